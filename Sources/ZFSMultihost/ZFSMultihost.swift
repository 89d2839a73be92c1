// ZFSMultihost: Multi-Modifier Protection (mmp.c of OpenZFS) for ZPoolKit — being built.
