from tests.conftest import Server


async def test_create_then_get_session(server: Server) -> None:
    created = await server.http.post("/sessions", json={"session_id": "s1", "session_name": "One"})
    assert created.status_code == 200
    got = await server.http.get("/sessions/s1")
    assert got.json()["session"]["session_name"] == "One"
