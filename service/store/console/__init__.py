"""The console's reads (issue 18): bounded, workspace-scoped queries over the
families' tables, by table name (store families never import each other's
queries). Records in `records`, page tokens in `cursors`."""
