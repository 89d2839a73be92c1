// ordo-one/benchmark targets for the nvlist codec (STYLE.md §7). Run from Benchmarks/:
//
//   swift package --allow-writing-to-package-directory benchmark --target NVListBenchmarks
//
// What to gate on: `.mallocCountTotal`, which is deterministic (the allocations one decode or
// encode of the fixture makes). Wall clock is printed for humans only: the machines are shared
// and noisy, and a speed means something only as a ratio against libnvpair measured in the same
// run, which is what `swift run -c release nvlist-bench` reports.

import Benchmark
import BenchSupport
import ZFSFormat

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .mallocCountSmall, .mallocCountLarge, .memoryLeakedBytes],
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000
    )

    // label 0 of a raidz1 leaf, OpenZFS 2.1.11: its config is 1960 bytes of XDR, 13 top-level pairs.
    let label: [UInt8]
    let cacheFile: [UInt8]
    do {
        label = try readFile(Checkout.fixture("label0-raidz-leaf.bin"))
        cacheFile = try readFile(Checkout.fixture("zpool.cache"))
    } catch {
        fatalError("cannot read the fixtures: \(error)")  // set-up, not the code under test
    }
    guard let config = packedConfig(ofLabel: label),
          let configList = try? NVList(decoding: config),
          let cacheList = try? NVList(decoding: cacheFile)
    else { fatalError("the fixtures do not decode") }

    Benchmark("NVList decode, label0 config (XDR, 1960 B)") { benchmark in
        for _ in benchmark.scaledIterations {
            Benchmark.blackHole(try NVList(decoding: config))
        }
    }

    Benchmark("NVList decode, label0 config area (XDR, 114648 B zero-padded)") { benchmark in
        let area = label[LabelFacts.configOffset..<(LabelFacts.configOffset + LabelFacts.configCapacity)]
        for _ in benchmark.scaledIterations {
            Benchmark.blackHole(try NVList(decoding: area))
        }
    }

    Benchmark("NVList encode, label0 config (XDR)") { benchmark in
        for _ in benchmark.scaledIterations {
            Benchmark.blackHole(try configList.encoded(as: .xdr))
        }
    }

    Benchmark("NVList decode, zpool.cache (NATIVE, 2512 B)") { benchmark in
        for _ in benchmark.scaledIterations {
            Benchmark.blackHole(try NVList(decoding: cacheFile))
        }
    }

    Benchmark("NVList encode, zpool.cache (NATIVE)") { benchmark in
        for _ in benchmark.scaledIterations {
            Benchmark.blackHole(try cacheList.encoded(as: .native))
        }
    }

    Benchmark("VdevLabel decode + verify + config decode, label0 (256 KiB)") { benchmark in
        for _ in benchmark.scaledIterations {
            let vdevLabel = try VdevLabel(decoding: label, absoluteOffset: 0, index: 0)
            Benchmark.blackHole(try NVList(decoding: try vdevLabel.verifiedConfigBytes()))
        }
    }
}
