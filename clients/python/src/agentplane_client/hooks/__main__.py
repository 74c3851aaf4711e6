"""`python -m agentplane_client.hooks claude-code|codex`."""

import sys

from agentplane_client.hooks.cli import hook_main

sys.exit(hook_main())
