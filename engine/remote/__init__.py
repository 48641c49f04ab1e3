"""The heavy stages on another machine: `holocap serve` (Ray Serve) and `--remote URL`.

wire.py    the versioned message format (a JSON header and raw arrays; no pickle)
session.py a client's session: the options its server-side stage is built with
server.py  the Serve deployments (one per stage), token and size checks
client.py  RemoteStage: a Stage that runs on the server and falls back to local
cli.py     the `serve` command and the `--remote` flags
"""
