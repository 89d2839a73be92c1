// swift-tools-version: 6.2
//
// ZPoolKit benchmarks and fuzzing: a package of its own (STYLE.md §7), so that the root
// package's `swift build` / `swift test` never compile it. Run from this directory:
//
//   swift run -c release nvlist-bench          # nvlist codec vs libnvpair 2.1.11, same run
//   swift run -c release zpk-fuzz              # 1,000,000 seeded mutations of real labels
//   swift run -c release scan-bench            # pool discovery over 100…5,000 devices vs a C pread loop and dd
//   swift run -c release pool-bench            # pool host puts/sync/open/export vs dd and POSIX writes
//   swift run -c release mos-bench             # MOS config: `zpk import --config --mos` vs `zdb -e -C`, whole processes
//   swift run -c release mmp-bench             # multihost activity check, detection, heartbeat cadence, CPU
//   swift run -c release nbd-bench             # NBD leaves at 0/5/50 ms RTT vs a plain libnbd C loop
//   swift package --allow-writing-to-package-directory benchmark   # ordo-one: mallocs per op
//
// See BENCHMARKS.md at the repository root for the recorded results.

import Foundation
import PackageDescription

// A path dependency's identity is its directory name (`main` in the team's checkout); derive it
// so that the products below resolve in a clone under any name.
let root = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "ZPoolKitBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // mmp-bench runs `PoolHost.multihostService`, a ServiceLifecycle `Service` (the root's own dependency).
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The default trait RuntimeInterposer pulls a package that is not mirrored here (STYLE.md §7).
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .target(
            name: "BenchSupport",
            dependencies: [.product(name: "ZFSFormat", package: root)]
        ),
        .executableTarget(
            name: "nvlist-bench",
            dependencies: [
                "BenchSupport",
                .product(name: "ZFSFormat", package: root),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "zpk-fuzz",
            dependencies: ["BenchSupport", .product(name: "ZFSFormat", package: root), .product(name: "ZFSImport", package: root)]
        ),
        // Whole processes only (zpk and zdb), so it links nothing of the root package.
        .executableTarget(name: "mos-bench"),
        .executableTarget(
            name: "scan-bench",
            dependencies: [
                "BenchSupport",
                .product(name: "ZFSFormat", package: root),
                .product(name: "ZFSImport", package: root),
            ]
        ),
        .executableTarget(
            name: "pool-bench",
            dependencies: [
                "BenchSupport",
                .product(name: "ZFSFormat", package: root),
                .product(name: "ZFSPool", package: root),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "mmp-bench",
            dependencies: [
                "BenchSupport",
                .product(name: "ZFSFormat", package: root),
                .product(name: "ZFSDevice", package: root),
                .product(name: "ZFSMultihost", package: root),
                .product(name: "ZFSImport", package: root),
                .product(name: "ZFSPool", package: root),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "nbd-bench",
            dependencies: [
                "BenchSupport",
                .product(name: "ZFSFormat", package: root),
                .product(name: "ZFSDevice", package: root),
                .product(name: "ZFSMultihost", package: root),
                .product(name: "ZFSImport", package: root),
                .product(name: "ZFSPool", package: root),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "NVListBenchmarks",
            dependencies: [
                "BenchSupport",
                .product(name: "ZFSFormat", package: root),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/NVListBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)

for target in package.targets {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    target.swiftSettings = settings
}
