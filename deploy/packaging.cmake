# The Debian package: `cmake --build build --target package` writes
# build/oms_<version>_<arch>.deb with
#   /usr/bin/omsd, omsctl, oms-load, oms-store-bench
#   /lib/systemd/system/omsd.service            (deploy/omsd.service)
#   /etc/oms/omsd.toml                          (deploy/omsd.toml, a conffile)
#   /usr/share/doc/oms/README.md, CONFIGURATION.md, OPERATIONS.md, ROCKSDB.md, PROTOCOL.md
# Depends come from dpkg-shlibdeps (the shared libraries the binaries link);
# postinst creates the `oms` system user and enables/starts the unit when
# systemd runs (deploy/debian/).
#
# The package links the release RocksDB (static, NDEBUG; deploy/ROCKSDB.md):
# configure the build dir with -DOMS_ROCKSDB=release
# -DOMS_ROCKSDB_PREFIX="$(deploy/rocksdb-release)" (deploy/test-deb does).
# From a build dir on Debian's librocksdb the package target stops and says
# so, unless OMS_PACKAGE_DEBIAN_ROCKSDB=ON asks for that package on purpose.
set(OMS_DEPLOY_DIR ${PROJECT_SOURCE_DIR}/deploy)
option(OMS_PACKAGE_DEBIAN_ROCKSDB
  "Let the package target build a .deb on Debian's librocksdb (assertions on; deploy/ROCKSDB.md)" OFF)

foreach(tool oms-load oms-store-bench)
  if(TARGET ${tool})
    install(TARGETS ${tool} RUNTIME DESTINATION bin)
  endif()
endforeach()
install(FILES ${OMS_DEPLOY_DIR}/omsd.service DESTINATION /lib/systemd/system)
install(FILES ${OMS_DEPLOY_DIR}/omsd.toml DESTINATION /etc/oms)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${OMS_DEPLOY_DIR}/CONFIGURATION.md
  ${OMS_DEPLOY_DIR}/OPERATIONS.md ${OMS_DEPLOY_DIR}/ROCKSDB.md ${PROJECT_SOURCE_DIR}/server/PROTOCOL.md
  DESTINATION share/doc/oms)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME oms)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "oms maintainers <oms@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "offline-message store-and-forward server (omsd, omsctl)")
set(CPACK_PACKAGE_DESCRIPTION
    "omsd keeps instant messages for users who are not signed in, notifies them at sign-in and delivers them; omsctl is the operator CLI; oms-load and oms-store-bench are benchmarks. RocksDB: ${OMS_ROCKSDB_BUILD}.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${OMS_DEPLOY_DIR}/debian/conffiles
    ${OMS_DEPLOY_DIR}/debian/postinst
    ${OMS_DEPLOY_DIR}/debian/prerm
    ${OMS_DEPLOY_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
if(OMS_ROCKSDB STREQUAL "system" AND NOT OMS_PACKAGE_DEBIAN_ROCKSDB)
  set(CPACK_PRE_BUILD_SCRIPTS ${OMS_DEPLOY_DIR}/debian/require-release-rocksdb.cmake)
endif()
include(CPack)
