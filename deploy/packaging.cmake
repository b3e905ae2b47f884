# The Debian package: `cmake --build build --target package` writes
# build/oms_<version>_<arch>.deb with
#   /usr/bin/omsd, omsctl, oms-load, oms-store-bench
#   /lib/systemd/system/omsd.service            (deploy/omsd.service)
#   /etc/oms/omsd.toml                          (deploy/omsd.toml, a conffile)
#   /usr/share/doc/oms/README.md, CONFIGURATION.md, OPERATIONS.md, PROTOCOL.md
# Depends come from dpkg-shlibdeps (the shared libraries the binaries link);
# postinst creates the `oms` system user and enables/starts the unit when
# systemd runs (deploy/debian/).
set(OMS_DEPLOY_DIR ${PROJECT_SOURCE_DIR}/deploy)

foreach(tool oms-load oms-store-bench)
  if(TARGET ${tool})
    install(TARGETS ${tool} RUNTIME DESTINATION bin)
  endif()
endforeach()
install(FILES ${OMS_DEPLOY_DIR}/omsd.service DESTINATION /lib/systemd/system)
install(FILES ${OMS_DEPLOY_DIR}/omsd.toml DESTINATION /etc/oms)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${OMS_DEPLOY_DIR}/CONFIGURATION.md
  ${OMS_DEPLOY_DIR}/OPERATIONS.md ${PROJECT_SOURCE_DIR}/server/PROTOCOL.md DESTINATION share/doc/oms)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME oms)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "oms maintainers <oms@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "offline-message store-and-forward server (omsd, omsctl)")
set(CPACK_PACKAGE_DESCRIPTION
    "omsd keeps instant messages for users who are not signed in, notifies them at sign-in and delivers them; omsctl is the operator CLI; oms-load and oms-store-bench are benchmarks.")
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
include(CPack)
