import Testing
import ZFSFormat
@testable import ZFSImport

/// Grouping and assembly, step by step against libzutil's `add_config`/`get_configs`/`fix_paths`.
@Suite struct PoolAssemblerTests {
    /// A 2-way mirror (top 10, leaves 11, 12) and a single file (top 20) of pool 1000.
    static let mirror = Synthetic.interior(
        type: "mirror", id: 0, guid: 10,
        children: [Synthetic.leaf(id: 0, guid: 11, path: "/old/a"), Synthetic.leaf(id: 1, guid: 12, path: "/old/b")])
    static let single = Synthetic.leaf(id: 1, guid: 20, path: "/old/c")

    @Test func groupsByPoolThenTopLevelAndAssemblesTheRoot() {
        var assembler = PoolAssembler()
        assembler.add(Synthetic.label(vdevChildren: 2, leafGUID: 11, tree: Self.mirror), path: "/new/a", searchOrder: 10, labelCount: 4)
        assembler.add(Synthetic.label(vdevChildren: 2, leafGUID: 12, tree: Self.mirror), path: "/new/b", searchOrder: 10, labelCount: 4)
        assembler.add(Synthetic.label(vdevChildren: 2, leafGUID: 20, tree: Self.single), path: "/new/c", searchOrder: 10, labelCount: 4)
        let pools = assembler.assemble()
        #expect(pools.count == 1)
        let pool = pools[0]
        #expect(pool.name == "tank")
        #expect(pool.guid == PoolGUID(1000))
        #expect(pool.txg == TXG(50))
        #expect(pool.hostID == 0x1234)
        #expect(pool.hostname == "nodeA")
        // Exactly the keys libzutil builds, in its order; no txg, errata, features_for_read.
        #expect(pool.config.pairs.map(\.name) == ["vdev_children", "version", "pool_guid", "name", "state", "hostid", "hostname", "vdev_tree"])
        let root = pool.config.list("vdev_tree")!
        #expect(root.pairs.map(\.name) == ["type", "id", "guid", "children"])
        #expect(root.uint64("guid") == 1000)
        #expect(pool.root.children.map(\.type) == [.mirror, .file])
        #expect(pool.root.leaves.map(\.path) == ["/new/a", "/new/b", "/new/c"])
        // fix_paths re-adds `path`: it moves after create_txg, as zdb prints it.
        #expect(pool.root.children[1].config.pairs.map(\.name) == ["type", "id", "guid", "create_txg", "path"])
        let expectedSum: UInt64 = 1000 + 10 + 11 + 12 + 20
        #expect(pool.root.guidSum == expectedSum)
        #expect(pool.notes.isEmpty, "\(pool.notes)")
        #expect(pool.memberDevices.map(\.path) == ["/new/c", "/new/b", "/new/a"])
    }

    @Test func holesAndMissingTopLevelsGetPlaceholders() {
        var assembler = PoolAssembler()
        // vdev_children 4: id 0 seen, id 1 a hole, ids 2 and 3 never seen.
        assembler.add(Synthetic.label(vdevChildren: 4, holes: [1], leafGUID: 11, tree: Self.mirror), path: "/d/a", searchOrder: 10, labelCount: 4)
        let pool = assembler.assemble()[0]
        #expect(pool.root.children.map(\.type) == [.mirror, .hole, .missing, .missing])
        #expect(pool.root.children.map(\.id) == [0, 1, 2, 3])
        #expect(pool.root.children.dropFirst().allSatisfy { $0.guid == VdevGUID(0) })
        #expect(pool.holeTopLevelIDs == [1])
        #expect(pool.missingTopLevelIDs == [2, 3])
        let hole = pool.config.list("vdev_tree")!.lists("children")![1]
        #expect(hole.pairs.map(\.name) == ["type", "id", "guid"])
        #expect(pool.config.pairs.map(\.name).prefix(2) == ["vdev_children", "hole_array"])
        #expect(pool.notes.contains { $0.contains("top-level vdev id 2") })
        // The other leaf of the mirror is on no device: its old path stays.
        #expect(pool.root.leaves.map(\.presence) == [.found(path: "/d/a", labelCount: 4), .notFound])
        #expect(pool.root.leaves[1].path == "/old/b")
    }

    @Test func newestLabelDecidesTheTopLevelNamespace() {
        var assembler = PoolAssembler()
        // A stale label (txg 40) of a top-level vdev at id 3, beyond what the newest label
        // (txg 50, vdev_children 2) counts: dropped.
        let stale = Synthetic.leaf(id: 3, guid: 30, path: "/old/x")
        assembler.add(Synthetic.label(txg: 40, vdevChildren: 4, leafGUID: 30, tree: stale), path: "/d/x", searchOrder: 10, labelCount: 4)
        assembler.add(Synthetic.label(txg: 50, vdevChildren: 2, leafGUID: 11, tree: Self.mirror), path: "/d/a", searchOrder: 10, labelCount: 4)
        let pool = assembler.assemble()[0]
        #expect(pool.root.children.map(\.type) == [.mirror, .missing])
        #expect(pool.config.uint64("vdev_children") == 2)
        #expect(pool.notes.contains { $0.contains("beyond the 2 top-level vdevs") })
        // The first top-level in libzutil's list (the last one added) supplied the pool keys,
        // and `vdev_children` came first because that top-level had the highest txg.
        #expect(pool.config.pairs.map(\.name).first == "vdev_children")
    }

    @Test func aLaterHigherTXGMovesVdevChildrenBehindThePoolKeys() {
        var assembler = PoolAssembler()
        // Added first = visited last; its txg beats the first visited one's, so libzutil removes
        // and re-adds vdev_children after the pool keys.
        assembler.add(Synthetic.label(txg: 60, vdevChildren: 2, leafGUID: 11, tree: Self.mirror), path: "/d/a", searchOrder: 10, labelCount: 4)
        assembler.add(Synthetic.label(txg: 55, vdevChildren: 2, leafGUID: 20, tree: Self.single), path: "/d/c", searchOrder: 10, labelCount: 4)
        let pool = assembler.assemble()[0]
        #expect(pool.config.pairs.map(\.name) == ["version", "pool_guid", "name", "state", "hostid", "hostname", "vdev_children", "vdev_tree"])
        #expect(pool.txg == TXG(60))
        #expect(pool.notes.contains { $0.contains("from txg 55") })
    }

    @Test func bestConfigPerTopLevelIsItsHighestTXG() {
        var assembler = PoolAssembler()
        var newer = Self.mirror
        newer.set("asize", .uint64(2 << 30))
        assembler.add(Synthetic.label(txg: 70, leafGUID: 12, tree: newer), path: "/d/b", searchOrder: 10, labelCount: 4)
        assembler.add(Synthetic.label(txg: 50, leafGUID: 11, tree: Self.mirror), path: "/d/a", searchOrder: 10, labelCount: 4)
        assembler.add(Synthetic.label(txg: 50, leafGUID: 11, tree: Self.mirror), path: "/d/a2", searchOrder: 10, labelCount: 4)
        let pool = assembler.assemble()[0]
        #expect(pool.root.children[0].config.uint64("asize") == 2 << 30)
        #expect(pool.topLevelVdevs.map(\.txgs) == [[TXG(50), TXG(70)]])
        #expect(pool.topLevelVdevs.first?.bestTXG == TXG(70))
    }

    @Test func poolKeysWithoutHostIDHaveNoHostname() {
        var assembler = PoolAssembler()
        var label = Synthetic.label(hostID: nil, leafGUID: 11, tree: Self.mirror)
        label.set("comment", .string("hello"))
        assembler.add(label, path: "/d/a", searchOrder: 10, labelCount: 4)
        let pool = assembler.assemble()[0]
        #expect(pool.config["hostname"] == nil)
        #expect(pool.hostID == nil)
        #expect(pool.hostname == nil)
        #expect(pool.comment == "hello")
        #expect(pool.config.pairs.map(\.name) == ["vdev_children", "version", "pool_guid", "name", "comment", "state", "vdev_tree"])
    }

    @Test func incompleteAndAuxLabelsOnlyFeedTheNameTable() {
        var assembler = PoolAssembler()
        var half = Synthetic.label(leafGUID: 11, tree: Self.mirror)
        half["top_guid"] = nil
        let (role, note) = assembler.add(half, path: "/d/half", searchOrder: 10, labelCount: 4)
        #expect(role == .none)
        #expect(note == .incompleteLabel(missing: ["top_guid"]))
        #expect(assembler.add(Synthetic.auxLabel(state: .spare, guid: 77), path: "/d/spare", searchOrder: 10, labelCount: 4).role == .spare(VdevGUID(77)))
        #expect(assembler.add(Synthetic.auxLabel(state: .l2cache, guid: 78), path: "/d/cache", searchOrder: 10, labelCount: 4).role == .l2cache(VdevGUID(78)))
        #expect(assembler.assemble().isEmpty)
        #expect(assembler.names.map(\.path) == ["/d/spare", "/d/cache"])
    }

    @Test func samePoolNameDifferentGuidsAreTwoPoolsNewestFirst() {
        var assembler = PoolAssembler()
        assembler.add(Synthetic.label(poolGUID: 1, leafGUID: 11, tree: Self.mirror), path: "/d/a", searchOrder: 10, labelCount: 4)
        assembler.add(Synthetic.label(poolGUID: 2, leafGUID: 11, tree: Self.mirror), path: "/d/b", searchOrder: 10, labelCount: 4)
        let pools = assembler.assemble()
        #expect(pools.map(\.guid) == [PoolGUID(2), PoolGUID(1)])
        let result = ScanResult(pools: pools, allPools: pools, devices: [])
        #expect(throws: ImportError.self) { try result.pool(.name("tank")) }
        #expect((try? result.pool(.guid(PoolGUID(1))))?.guid == PoolGUID(1))
    }

    /// fix_paths: the current path wins outright; else more labels; else lower order; with no
    /// current path, the newest entry wins.
    @Test func pathRefreshPreference() {
        var assembler = PoolAssembler()
        assembler.add(Synthetic.auxLabel(state: .spare, guid: 5), path: "/dev/disk/by-id/x", searchOrder: 16, labelCount: 4)
        assembler.add(Synthetic.auxLabel(state: .spare, guid: 5), path: "/dev/sdx", searchOrder: 18, labelCount: 4)
        assembler.add(Synthetic.auxLabel(state: .spare, guid: 5), path: "/dev/mapper/x", searchOrder: 11, labelCount: 2)
        #expect(assembler.bestName(for: 5, currentPath: "/dev/sdx")?.path == "/dev/sdx")
        #expect(assembler.bestName(for: 5, currentPath: "/gone")?.path == "/dev/disk/by-id/x")
        #expect(assembler.bestName(for: 5, currentPath: nil)?.path == "/dev/mapper/x")
        #expect(assembler.bestName(for: 6, currentPath: "/gone") == nil)
        // Byte comparison, not Unicode equivalence: "é" precomposed vs decomposed differ.
        assembler.add(Synthetic.auxLabel(state: .spare, guid: 7), path: "/d/caf\u{E9}", searchOrder: 10, labelCount: 1)
        assembler.add(Synthetic.auxLabel(state: .spare, guid: 7), path: "/d/cafe\u{301}", searchOrder: 10, labelCount: 4)
        #expect(assembler.bestName(for: 7, currentPath: "/d/caf\u{E9}")?.labelCount == 1)
    }

    @Test func diskLeavesGetDeviceIdsRefreshedFilesDoNot() {
        var disk = Synthetic.leaf(id: 0, guid: 11, path: "/old/sda", type: "disk", extra: [("devid", .string("ata-OLD")), ("phys_path", .string("pci-old")), ("whole_disk", .uint64(1))])
        let rule = DiskIdentityRule { path, wholeDisk in
            path == "/dev/sdz" && wholeDisk ? DiskIdentity(deviceID: "ata-NEW", physicalPath: "pci-new") : nil
        }
        var refreshed = disk
        refreshed.set("path", .string("/dev/sdz"))
        rule.refreshDeviceStrings(of: &refreshed)
        #expect(refreshed.string("devid") == "ata-NEW")
        #expect(refreshed.string("phys_path") == "pci-new")
        // A disk vdev found as an image file: udev does not know it; the strings go.
        disk.set("path", .string("/tmp/disk.img"))
        rule.refreshDeviceStrings(of: &disk)
        #expect(disk["devid"] == nil && disk["phys_path"] == nil)
        var file = Synthetic.leaf(id: 0, guid: 11, path: "/x", extra: [("devid", .string("keep"))])
        rule.refreshDeviceStrings(of: &file)
        #expect(file.string("devid") == "keep")
        var optOut = DiskIdentityRule(optOut: true) { _, _ in nil }
        rule.refreshDeviceStrings(of: &file)
        optOut.refreshDeviceStrings(of: &file)
        #expect(file["devid"] == nil)
        optOut.optOut = false
        #expect(DiskIdentityRule.optOut(environment: ["ZFS_VDEV_DEVID_OPT_OUT": "YES"]))
        #expect(DiskIdentityRule.optOut(environment: ["ZFS_VDEV_DEVID_OPT_OUT": "On"]))
        #expect(DiskIdentityRule.optOut(environment: ["ZFS_VDEV_DEVID_OPT_OUT": "0x1"]))
        #expect(!DiskIdentityRule.optOut(environment: ["ZFS_VDEV_DEVID_OPT_OUT": "0"]))
        #expect(!DiskIdentityRule.optOut(environment: [:]))
    }

    @Test func zdbRenderingAddsTheLoadPolicy() {
        var assembler = PoolAssembler()
        assembler.add(Synthetic.label(leafGUID: 11, tree: Self.single), path: "/d/c", searchOrder: 10, labelCount: 4)
        let text = ZdbImportText.render(assembler.assemble()[0])
        #expect(text.hasPrefix("\nConfiguration for import:\n        vdev_children: 1\n        version: 5000\n"))
        #expect(text.hasSuffix("        load-policy:\n            load-request-txg: 18446744073709551615\n            load-rewind-policy: 2\n"))
        #expect(ZdbImportText.extract(fromZdbOutput: "x\n" + text + "\nMOS Configuration:\n        version: 5000\n") == text)
        #expect(ZdbImportText.extract(fromZdbOutput: "zdb: can't open 'x': No such file or directory\n") == nil)
    }
}

@Suite struct PoolSelectorTests {
    @Test func zpoolTreatsAllDigitsAsAGuid() {
        #expect(PoolSelector(zpoolArgument: "123") == .guid(PoolGUID(123)))
        #expect(PoolSelector(zpoolArgument: "18446744073709551615") == .guid(PoolGUID(.max)))
        #expect(PoolSelector(zpoolArgument: "18446744073709551616") == .name("18446744073709551616"))
        #expect(PoolSelector(zpoolArgument: "0x10") == .name("0x10"))
        #expect(PoolSelector(zpoolArgument: "tank") == .name("tank"))
        #expect(PoolSelector(zpoolArgument: "") == .name(""))
    }

    @Test func zdbUsesStrtoull() {
        #expect(PoolSelector(zdbArgument: "0x10") == .guid(PoolGUID(16)))
        #expect(PoolSelector(zdbArgument: "010") == .guid(PoolGUID(8)))
        #expect(PoolSelector(zdbArgument: "12abc") == .guid(PoolGUID(12)))
        #expect(PoolSelector(zdbArgument: "tank/fs@snap") == .name("tank"))
        #expect(PoolSelector(zdbArgument: "0") == .name("0"))
    }

    @Test func versionsAndStates() {
        #expect(SPAVersion.isSupported(1) && SPAVersion.isSupported(28) && SPAVersion.isSupported(5000))
        #expect(!SPAVersion.isSupported(0) && !SPAVersion.isSupported(29) && !SPAVersion.isSupported(999))
        #expect(PoolState.destroyed.description == "DESTROYED")
        #expect(PoolState.spare.isAuxiliary && PoolState.l2cache.isAuxiliary && !PoolState.exported.isAuxiliary)
        #expect(VdevAux(rawValue: 20).description == "ASHIFT_TOO_BIG")
        #expect(VdevState.healthy.rawValue == 7)
        #expect(DestroyedPoolPolicy.exclude.admits(.exported) && !DestroyedPoolPolicy.exclude.admits(.destroyed))
        #expect(DestroyedPoolPolicy.only.admits(.destroyed) && !DestroyedPoolPolicy.only.admits(.active))
    }
}

@Suite struct CandidateOrderTests {
    private func order(_ names: [String]) -> [String] {
        var tree = CandidateOrder()
        for name in names { tree.insert(CandidateKey(path: name, expectedGUID: 0)) }
        return tree.postOrder().map { tree.keys[$0].path }
    }

    /// avl_destroy_nodes walks left subtree, right subtree, node.
    @Test func postOrderOfBalancedTrees() {
        // Ascending inserts rotate into the perfect tree rooted at "4".
        #expect(order(["1", "2", "3", "4", "5", "6", "7"]) == ["1", "3", "2", "5", "7", "6", "4"])
        // A double rotation: c, a, b → root b.
        #expect(order(["c", "a", "b"]) == ["a", "c", "b"])
        #expect(order(["b", "a", "c", "d"]) == ["a", "d", "c", "b"])
        #expect(order([]) == [])
    }

    @Test func duplicatesAreDroppedAndBytesCompareLikeStrcmp() {
        #expect(order(["a", "a", "b"]) == ["b", "a"])
        // "B" (0x42) < "a" (0x61) < "é" (0xC3 0xA9)
        #expect(order(["/d/\u{E9}", "/d/a", "/d/B"]) == ["/d/B", "/d/\u{E9}", "/d/a"])
        var tree = CandidateOrder()
        let inserted = [1, 2, 1].map { tree.insert(CandidateKey(path: "x", expectedGUID: $0)) }
        #expect(inserted == [true, true, false])
        #expect(tree.count == 2)
    }
}
