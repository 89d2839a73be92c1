// The `zpk` executable: everything lives in ZPKCLI so that tests can drive it in-process.
import ZPKCLI

ZPK.runFromCommandLine()
