# CPack runs this before it writes the .deb of a build dir that links
# Debian's librocksdb (deploy/packaging.cmake): the package links the
# release RocksDB (deploy/ROCKSDB.md).
message(FATAL_ERROR
  "oms: this build dir links Debian's librocksdb (assertions on: an abort on a "
  "full disk). The .deb links the release build: configure with\n"
  "  -DOMS_ROCKSDB=release -DOMS_ROCKSDB_PREFIX=\"$(deploy/rocksdb-release)\"\n"
  "(deploy/test-deb does it in build-deb/), or add -DOMS_PACKAGE_DEBIAN_ROCKSDB=ON "
  "for a package on Debian's library.")
