// The order in which libzutil processes probed devices, reproduced.
//
// Why it matters. libzutil keeps every candidate path in an AVL tree sorted by (path bytes,
// expected vdev guid) — `slice_cache_compare` — probes them all in parallel, and then consumes
// the tree with `avl_destroy_nodes`, which walks it in *post-order* (left subtree, right
// subtree, node). That walk is the order in which `add_config` sees devices, and `add_config`
// prepends to its pool, top-level and name lists. So the walk decides
//
//   * the order of pools in the result (newest-first: reverse of first discovery),
//   * which top-level vdev's config supplies the pool-level keys (`version`, `name`, `state`,
//     `hostid`, …: the head of the top-level list, i.e. the last one first seen),
//   * where `vdev_children` and `hole_array` land among the pool's keys, and
//   * which of two equally good names wins in `fix_paths`.
//
// A post-order walk depends on the tree's shape, and an AVL tree's shape depends on the order
// of insertion — `readdir` order, directory by directory. The tree here is a textbook AVL tree
// (OpenZFS's `avl_insert` rebalances with the canonical single and double rotations at the
// first unbalanced ancestor), so given the same insertion sequence it has the same shape.
//
// What it does not guarantee: in blkid mode libzutil also inserts label-derived paths while
// probing (in completion order, which is racy); we never do that, so the question does not arise.

#if canImport(Glibc)
import Glibc
#endif

/// A candidate path and the vdev guid expected on it (0: any), the key of libzutil's tree.
struct CandidateKey: Sendable {
    var path: String
    var expectedGUID: UInt64

    /// `slice_cache_compare`: `strcmp` on the path bytes, then the guid.
    static func compare(_ a: CandidateKey, _ b: CandidateKey) -> Int {
        var left = a.path
        var right = b.path
        let order = left.withUTF8 { l in
            right.withUTF8 { r -> Int in
                let common = Swift.min(l.count, r.count)
                if common > 0, let lb = l.baseAddress, let rb = r.baseAddress {
                    let c = memcmp(lb, rb, common)
                    if c != 0 { return c < 0 ? -1 : 1 }
                }
                return l.count == r.count ? 0 : (l.count < r.count ? -1 : 1)
            }
        }
        if order != 0 { return order }
        return a.expectedGUID < b.expectedGUID ? -1 : (a.expectedGUID > b.expectedGUID ? 1 : 0)
    }
}

/// An AVL tree of candidate keys that reports libzutil's processing order.
struct CandidateOrder {
    private struct Node {
        var key: CandidateKey
        var left: Int?
        var right: Int?
        var height: Int
    }

    private var nodes: [Node] = []
    private var root: Int?

    /// The keys in insertion order (duplicates dropped), indexed like ``postOrder()``'s output.
    var keys: [CandidateKey] { nodes.map(\.key) }

    var count: Int { nodes.count }

    /// Inserts `key` unless an equal key is present, like `avl_find` + `avl_insert`.
    /// - Returns: whether the key was new.
    @discardableResult
    mutating func insert(_ key: CandidateKey) -> Bool {
        var inserted = false
        root = insert(key, into: root, inserted: &inserted)
        return inserted
    }

    /// Indices into ``keys`` in the order `avl_destroy_nodes` returns them.
    /// - Complexity: O(*n*).
    func postOrder() -> [Int] {
        var result: [Int] = []
        result.reserveCapacity(nodes.count)
        // Iterative post-order: the tree's depth is O(log n) but we avoid recursion anyway.
        var stack: [(node: Int, visited: Bool)] = []
        if let root { stack.append((root, false)) }
        while let (node, visited) = stack.popLast() {
            if visited {
                result.append(node)
                continue
            }
            stack.append((node, true))
            if let right = nodes[node].right { stack.append((right, false)) }
            if let left = nodes[node].left { stack.append((left, false)) }
        }
        return result
    }

    private func height(_ node: Int?) -> Int { node.map { nodes[$0].height } ?? 0 }

    private mutating func update(_ node: Int) {
        nodes[node].height = 1 + max(height(nodes[node].left), height(nodes[node].right))
    }

    private mutating func rotateRight(_ node: Int) -> Int {
        let pivot = nodes[node].left!
        nodes[node].left = nodes[pivot].right
        nodes[pivot].right = node
        update(node)
        update(pivot)
        return pivot
    }

    private mutating func rotateLeft(_ node: Int) -> Int {
        let pivot = nodes[node].right!
        nodes[node].right = nodes[pivot].left
        nodes[pivot].left = node
        update(node)
        update(pivot)
        return pivot
    }

    private mutating func insert(_ key: CandidateKey, into node: Int?, inserted: inout Bool) -> Int {
        guard let node else {
            nodes.append(Node(key: key, left: nil, right: nil, height: 1))
            inserted = true
            return nodes.count - 1
        }
        let order = CandidateKey.compare(key, nodes[node].key)
        if order == 0 { return node }
        if order < 0 {
            nodes[node].left = insert(key, into: nodes[node].left, inserted: &inserted)
        } else {
            nodes[node].right = insert(key, into: nodes[node].right, inserted: &inserted)
        }
        guard inserted else { return node }
        update(node)
        let balance = height(nodes[node].right) - height(nodes[node].left)
        if balance < -1 {
            if let left = nodes[node].left, height(nodes[left].right) > height(nodes[left].left) {
                nodes[node].left = rotateLeft(left)
            }
            return rotateRight(node)
        }
        if balance > 1 {
            if let right = nodes[node].right, height(nodes[right].left) > height(nodes[right].right) {
                nodes[node].right = rotateRight(right)
            }
            return rotateLeft(node)
        }
        return node
    }
}
