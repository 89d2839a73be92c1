// ZPKDaemon — the library behind `zpkd`: the control-socket protocol shared with the `zpk`
// client, the server, and the request handlers over a `ZFSPool.PoolHost`. docs/daemon.md.
