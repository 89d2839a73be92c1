// swift-tools-version: 6.2
//
// ZPoolKit: finds, opens, imports and protects OpenZFS storage pools, on-disk
// compatible with OpenZFS 2.1.11. Module layering is described in STYLE.md §2:
// ZFSFormat (pure codecs) and ZFSDevice (block I/O) sit at the bottom; the
// executables sit at the top and are the only places that bootstrap logging.

import PackageDescription

let package = Package(
    name: "ZPoolKit",
    products: [
        .library(name: "ZFSFormat", targets: ["ZFSFormat"]),
        .library(name: "ZFSDevice", targets: ["ZFSDevice"]),
        .library(name: "ZFSImport", targets: ["ZFSImport"]),
        .library(name: "ZFSPool", targets: ["ZFSPool"]),
        .library(name: "ZFSMultihost", targets: ["ZFSMultihost"]),
        .library(name: "ZPKControl", targets: ["ZPKControl"]),
        .executable(name: "zpk", targets: ["zpk"]),
        .executable(name: "zpkd", targets: ["zpkd"]),
        .executable(name: "zpk-trials", targets: ["zpk-trials"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // zpkd --metrics: the metrics API the libraries record into, its Prometheus backend, and
        // a small HTTP/1.1 server (no SwiftNIO) for GET /metrics.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
        // Documentation only: `swift package generate-documentation --target ZFSFormat`.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // The system's zlib and libzstd, for gzip- and zstd-compressed blocks (installed by
        // scripts/install-openzfs: zlib1g-dev, libzstd-dev).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .target(
            name: "ZFSFormat",
            dependencies: ["CZlib", "CZstd", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // libnbd (Debian libnbd-dev) and the deadline loops NBDBlockDevice drives it with.
        .target(
            name: "CZPKNBD",
            linkerSettings: [.linkedLibrary("nbd")]
        ),
        .target(
            name: "ZFSDevice",
            dependencies: [
                "CZPKNBD",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Linux calls the Glibc module does not expose (timerfd, thread names and slack,
        // posix_spawn's closefrom), as inline C wrappers.
        .target(name: "CZFSLinux"),
        .target(
            name: "ZFSMultihost",
            dependencies: [
                "CZFSLinux",
                "ZFSFormat",
                "ZFSDevice",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "ZFSImport",
            dependencies: [
                "ZFSFormat",
                "ZFSDevice",
                "ZFSMultihost",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ZFSPool",
            dependencies: [
                "ZFSFormat",
                "ZFSDevice",
                "ZFSImport",
                "ZFSMultihost",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // The control protocol of zpkd, shared by the daemon and the `zpk` client: frames, the
        // one JSON value type (also `zpk --json` output), request/reply shapes, the connection
        // and the client. docs/daemon.md.
        .target(
            name: "ZPKControl",
            dependencies: [.product(name: "SystemPackage", package: "swift-system")]
        ),
        // The host daemon's library: server and request handlers over a PoolHost. docs/daemon.md.
        .target(
            name: "ZPKDaemon",
            dependencies: [
                "ZPKControl",
                "ZFSFormat",
                "ZFSDevice",
                "ZFSImport",
                "ZFSMultihost",
                "ZFSPool",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "FlyingFox", package: "FlyingFox"),
                .product(name: "FlyingSocks", package: "FlyingFox"),
            ]
        ),
        .target(
            name: "ZPKCLI",
            dependencies: [
                "ZFSFormat",
                "ZFSDevice",
                "ZFSImport",
                "ZFSMultihost",
                "ZFSPool",
                "ZPKControl",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ZFSTestSupport",
            dependencies: [
                "CZFSLinux", "ZFSFormat", "ZFSDevice",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .executableTarget(
            name: "zpk",
            dependencies: ["ZPKCLI"]
        ),
        .executableTarget(
            name: "zpkd",
            dependencies: [
                "ZPKDaemon",
                "ZPKControl",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Multi-host fault trials: the checker (pure, evidence in, verdict out) and the runner that
        // builds network namespaces, runs zpkd per host and injects faults (scripts/fault-trials).
        .target(name: "ZFSTrials"),
        .executableTarget(
            name: "zpk-trials",
            dependencies: [
                "CZFSLinux", "ZFSTrials", "ZFSFormat", "ZFSDevice", "ZFSImport", "ZFSPool", "ZPKControl",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "FaultTrialTests",
            dependencies: ["ZFSTrials", "ZFSTestSupport", "zpk-trials", "zpkd"]
        ),
        .testTarget(
            name: "ZFSFormatTests",
            dependencies: [
                "ZFSFormat", "ZFSTestSupport", "CZlib", "CZstd",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "ZFSDeviceTests",
            dependencies: [
                "ZFSDevice", "ZFSTestSupport",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .testTarget(
            name: "ZFSImportTests",
            dependencies: ["ZFSImport", "ZFSMultihost", "ZFSFormat", "ZFSDevice", "ZFSTestSupport"]
        ),
        .testTarget(
            name: "ZFSMultihostTests",
            dependencies: [
                "ZFSMultihost", "ZFSFormat", "ZFSDevice", "ZFSTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "ZFSPoolTests",
            dependencies: ["ZFSPool", "ZFSImport", "ZFSFormat", "ZFSDevice", "ZFSTestSupport"]
        ),
        .testTarget(
            name: "ZPKTests",
            dependencies: ["ZPKCLI", "ZFSImport", "ZFSFormat", "ZFSDevice", "ZFSTestSupport", "zpk"]
        ),
        .testTarget(
            name: "ZPKControlTests",
            dependencies: ["ZPKControl"]
        ),
        .testTarget(
            name: "ZPKDaemonTests",
            dependencies: [
                "ZPKDaemon", "ZPKControl", "ZFSPool", "ZFSImport", "ZFSFormat", "ZFSDevice", "ZFSTestSupport", "zpk", "zpkd",
            ]
        ),
    ]
)

for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    target.swiftSettings = settings
}
