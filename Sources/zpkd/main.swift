// zpkd: the pool host daemon. Thin: options, logging bootstrap, then ZPKDaemon's `Daemon.run`
// (Sources/ZPKDaemon; docs/daemon.md).
import ArgumentParser

await ZPKD.runFromCommandLine()
