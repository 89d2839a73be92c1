// The "Configuration for import" block of `zdb -e -p DIR -CC POOL`.
//
// zdb (`cmd/zdb/zdb.c`, 2.1.11, `main`) finds the pool with `zpool_find_config` in
// "can be active" mode, which returns the assembled config *before* the kernel refresh (no
// tryimport: no stats, no `spares`/`l2cache`, no `timestamp`, and `hostid`/`hostname` exactly as
// the labels have them). It then adds its load policy — `load-policy: {load-request-txg:
// UINT64_MAX (or -t TXG), load-rewind-policy: (uint32) 2 = ZPOOL_NEVER_REWIND (or the -F/-X
// rewind bits)}` — and, with `-CC`, prints "\nConfiguration for import:\n" and
// `dump_nvlist(cfg, 8)`. Keys the labels carry but the assembled config does not: `txg`,
// `errata`, `top_guid`, `guid`, `features_for_read`, `is_log`/`is_spare` at the top, `create_txg`,
// `split_guid`.

import ZFSFormat

/// Renders a ``PoolCandidate`` the way `zdb -e -p DIR -CC POOL` prints it.
public enum ZdbImportText {
    /// The header zdb prints before the config (with a blank line before it).
    public static let header = "\nConfiguration for import:\n"

    /// zdb's policy without `-F`, `-X` or `-t`: request txg `UINT64_MAX`, rewind policy
    /// `ZPOOL_NEVER_REWIND` (2), as a `UNIQUE_NAME_TYPE` list.
    public static let defaultLoadPolicy: NVList = {
        var policy = NVList(flags: .uniqueNameAndType)
        policy.set("load-request-txg", .uint64(.max))
        policy.set("load-rewind-policy", .uint32(2))
        return policy
    }()

    /// The exact text of zdb's "Configuration for import" block for `candidate`, header included.
    public static func render(_ candidate: PoolCandidate, loadPolicy: NVList = defaultLoadPolicy) -> String {
        header + candidate.zdbImportConfiguration(loadPolicy: loadPolicy).dumpText(indent: 8)
    }

    /// The block zdb printed, cut out of its whole standard output: from the header to the
    /// line before the next unindented line (zdb prints "MOS Configuration:" or an error next).
    /// - Returns: the block, header included, or `nil` if zdb printed none.
    public static func extract(fromZdbOutput output: String) -> String? {
        guard let start = output.firstRange(of: header) else { return nil }
        var block = header
        for line in output[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.hasPrefix(" ") else { break }
            block += line
            block += "\n"
        }
        return block
    }
}

/// Renders a MOS config the way `zdb -e -p DIR -C POOL` prints it under "MOS Configuration":
/// zdb's `dump_config` reads the config object's packed nvlist and prints it with
/// `dump_nvlist(nv, 8)`, as stored (no load policy, no stats).
public enum ZdbMOSText {
    /// The header zdb prints before the config (with a blank line before it).
    public static let header = "\nMOS Configuration:\n"

    /// The exact text of zdb's "MOS Configuration" block, header included.
    public static func render(_ config: NVList) -> String {
        header + config.dumpText(indent: 8)
    }

    /// The block zdb printed, cut out of its whole standard output (header to the line before
    /// the next unindented line); `nil` if zdb printed none.
    public static func extract(fromZdbOutput output: String) -> String? {
        guard let start = output.firstRange(of: header) else { return nil }
        var block = header
        for line in output[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.hasPrefix(" ") else { break }
            block += line
            block += "\n"
        }
        return block
    }
}
