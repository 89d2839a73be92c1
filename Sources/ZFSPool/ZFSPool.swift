// ZFSPool: the pool host of ZPoolKit (the SPA of the essay in shared/seeds/).
//
// Design rule, from the history of OpenZFS's import code: opening a pool and discovering a
// pool are different operations. The host takes a fully built config and opens it at face
// value, whether the config came from the cache file or from an import scan; then the
// transactional MOS config is the final authority.
//
// This module is being built; see docs/design/pool-host.md.
