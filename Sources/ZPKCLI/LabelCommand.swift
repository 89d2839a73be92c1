import ArgumentParser
import ZFSDevice
import ZFSFormat
import ZFSImport

extension ZPK {
    /// `zpk label [-u] [--json] DEVICE`
    struct Label: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the vdev labels of a device, as `zdb -l` does.",
            discussion: """
                Every ZFS leaf device carries four 256 KiB labels: two at its start and two at \
                its end. Each holds the config of the pool and of the device's top-level vdev, \
                and a ring of uberblocks (the roots of the pool's most recent transaction \
                groups).

                Without --json the output is exactly that of OpenZFS 2.1.11's `zdb -l DEVICE` \
                (with -u, `zdb -lu DEVICE`), exit status included: 0 when all labels unpack, \
                1 when some fail to read or unpack, 2 when none does. Like zdb, the text form \
                does not verify checksums.

                With --json every label and every uberblock slot is verified against its \
                embedded SHA-256 checksum, as the kernel does on import: status is valid, \
                bad-checksum, corrupt (checksum fine, nvlist not), unreadable or empty.

                The device is opened read-only; nothing is ever written.

                Examples:
                  zpk label /dev/sdb1
                  zpk label -u /var/tmp/pool/disk0.img
                  zpk label --json /dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part1
                """
        )

        @Flag(name: .short, help: "Also show the uberblocks (as `zdb -lu`).")
        var uberblocks = false

        @Flag(help: "Print JSON with checksum verdicts for every label and uberblock.")
        var json = false

        @Argument(help: "The device or file to read: a path, or a name under /dev.")
        var device: String

        func run() throws {
            if json {
                let output = LabelJSONReport.run(path: device)
                emit(output.text)
                if output.status != 0 { throw ExitCode(output.status) }
                return
            }
            let output = ZdbLabelDump.run(path: device, uberblocks: uberblocks)
            emit(output.text)
            if output.status != 0 { throw ExitCode(output.status) }
        }
    }
}

/// `zpk label --json`: every label and uberblock with its checksum verdict.
enum LabelJSONReport {
    static func run(path: String) -> ZdbLabelDump.Output {
        let device: any BlockDevice
        do {
            device = try DeviceOpener.open(path: path)
        } catch {
            let report = JSON.object([("device", .string(path)), ("error", .string(error.message))])
            return .init(text: report.rendered(), status: 1)
        }
        defer { try? device.close() }
        let labels = DeviceLabels(reading: device)
        let status: Int32 =
            labels.labels.allSatisfy({ $0.config == nil }) ? 2 : (labels.labels.allSatisfy({ $0.status == .valid }) ? 0 : 1)
        return .init(text: render(labels).rendered(), status: status)
    }

    static func render(_ device: DeviceLabels) -> JSON {
        var uberblocks: [JSON] = []
        var usable: [(label: Int, slot: UberblockRing.Slot, uberblock: Uberblock)] = []
        for label in device.labels {
            for slot in label.slots {
                uberblocks.append(render(slot, label: label.index))
                if slot.isUsable, let uberblock = slot.uberblock { usable.append((label.index, slot, uberblock)) }
            }
        }
        var best: JSON = .null
        if let winner = usable.max(by: { Uberblock.compare($0.uberblock, $1.uberblock) < 0 }) {
            best = .object([
                ("label", .unsigned(UInt64(winner.label))),
                ("slot", .unsigned(UInt64(winner.slot.index))),
                ("offset", .unsigned(winner.slot.absoluteOffset)),
                ("txg", .unsigned(winner.uberblock.txg.rawValue)),
            ])
        }
        return .object([
            ("device", .string(device.path)),
            ("size", .unsigned(device.sizeInBytes)),
            ("labels", .array(device.labels.map(render))),
            ("uberblocks", .array(uberblocks)),
            ("best_uberblock", best),
        ])
    }

    static func render(_ label: DeviceLabels.Label) -> JSON {
        var members: [(String, JSON)] = [
            ("index", .unsigned(UInt64(label.index))),
            ("offset", label.absoluteOffset.map { .unsigned($0) } ?? .null),
            ("status", .string(label.status.rawValue)),
        ]
        if let problem = label.problem { members.append(("problem", .string(problem))) }
        members.append(("config_checksum", label.configChecksum.map { .string(checksumName($0)) } ?? .null))
        members.append(("config", label.config.map { JSON($0) } ?? .null))
        return .object(members)
    }

    static func render(_ slot: UberblockRing.Slot, label: Int) -> JSON {
        var members: [(String, JSON)] = [
            ("label", .unsigned(UInt64(label))),
            ("slot", .unsigned(UInt64(slot.index))),
            ("offset", .unsigned(slot.absoluteOffset)),
            ("checksum", .string(checksumName(slot.checksum))),
        ]
        guard let ub = slot.uberblock else {
            members.append(("uberblock", .null))
            return .object(members)
        }
        let bp = ub.rootBlockPointer
        members += [
            ("byte_order", .string(ub.byteOrder == .little ? "little" : "big")),
            ("magic", .unsigned(Uberblock.magic)),
            ("version", .unsigned(ub.version)),
            ("txg", .unsigned(ub.txg.rawValue)),
            ("guid_sum", .unsigned(ub.guidSum)),
            ("timestamp", .unsigned(ub.timestampInSeconds)),
            ("software_version", .unsigned(ub.softwareVersion)),
            ("mmp_magic", .unsigned(ub.mmpMagic)),
            ("mmp_delay", .unsigned(ub.mmpDelayInNanoseconds)),
            ("mmp_config", .unsigned(ub.mmpConfig.rawValue)),
            ("mmp_valid", .unsigned(UInt64(ub.isMMPValid ? ub.mmpConfig.validBits : 0))),
            ("mmp_seq", ub.mmpSequence.map { .unsigned(UInt64($0)) } ?? .null),
            ("mmp_fail_intervals", ub.mmpFailIntervals.map { .unsigned(UInt64($0)) } ?? .null),
            ("mmp_write_interval_ms", ub.mmpWriteIntervalInMilliseconds.map { .unsigned(UInt64($0)) } ?? .null),
            ("checkpoint_txg", .unsigned(ub.checkpointTXG.rawValue)),
            ("rootbp", .array(bp.words.map { .unsigned($0) })),
        ]
        return .object(members)
    }

    static func checksumName(_ status: EmbeddedChecksum.Status) -> String {
        switch status {
        case .valid: "valid"
        case .mismatch: "mismatch"
        case .noMagic: "missing"
        }
    }
}
