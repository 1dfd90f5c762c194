# What `cpack -G DEB` (run in a build directory) puts into tocsin's two
# Debian packages, in build/packages/:
#   tocsin      /usr/bin/tocsin (daemon and CLI), the shipped transports in
#               /usr/lib/tocsin/plugins, /etc/tocsin/tocsin.toml (a conffile),
#               the systemd unit, the man page, and maintainer scripts that
#               make the tocsin system user and /var/lib/tocsin
#               (packaging/deb/tocsin/).
#   tocsin-dev  the plugin ABI headers in /usr/include/tocsin, tocsin-plugin.pc
#               and the Discord example plugin with its Makefile.
# These are the only install() rules: tests and benchmarks install nothing.
# Dependencies come from dpkg-shlibdeps. docs/install.md says how to build,
# check and install the packages.
include(GNUInstallDirs)

set(TOCSIN_PACKAGE_MAINTAINER
  "tocsin maintainers <maintainers@users.noreply.r-seed-b7089e86.example>"
  CACHE STRING "The Maintainer field of the Debian packages")

# ---- tocsin ----------------------------------------------------------------

install(TARGETS tocsin RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  COMPONENT tocsin)
# The daemon finds them relative to its own path, <bin>/../lib/tocsin/plugins
# (app/main.cpp, plugins_dir_of).
foreach(name webhook slack pagerduty)
  install(TARGETS tocsin_transport_${name}
    LIBRARY DESTINATION lib/tocsin/plugins COMPONENT tocsin)
endforeach()
install(FILES packaging/tocsin.toml DESTINATION /etc/tocsin COMPONENT tocsin)
install(FILES packaging/tocsin.service DESTINATION /lib/systemd/system
  COMPONENT tocsin)

# Man page and changelog, gzipped reproducibly (-n: no name or time stamp),
# as Debian wants them.
set(tocsin_pkg_dir ${PROJECT_BINARY_DIR}/packaging)
configure_file(packaging/changelog.in ${tocsin_pkg_dir}/changelog @ONLY)
configure_file(packaging/tocsin.1 ${tocsin_pkg_dir}/tocsin.1 @ONLY)
find_program(TOCSIN_GZIP gzip REQUIRED)
foreach(file changelog tocsin.1)
  add_custom_command(OUTPUT ${tocsin_pkg_dir}/${file}.gz
    COMMAND ${TOCSIN_GZIP} -9 -n -c ${tocsin_pkg_dir}/${file}
            > ${tocsin_pkg_dir}/${file}.gz
    DEPENDS ${tocsin_pkg_dir}/${file} VERBATIM)
endforeach()
add_custom_target(tocsin_package_docs ALL
  DEPENDS ${tocsin_pkg_dir}/changelog.gz ${tocsin_pkg_dir}/tocsin.1.gz)
install(FILES ${tocsin_pkg_dir}/tocsin.1.gz
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT tocsin)
foreach(package tocsin tocsin-dev)
  if(package STREQUAL "tocsin")
    set(component tocsin)
  else()
    set(component dev)
  endif()
  install(FILES packaging/copyright ${tocsin_pkg_dir}/changelog.gz
    DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${package} COMPONENT ${component})
endforeach()

# ---- tocsin-dev ------------------------------------------------------------

install(FILES plugins/tocsin_plugin.h plugins/tocsin_plugin_util.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tocsin COMPONENT dev)
install(FILES examples/discord/discord.c examples/discord/Makefile
  DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/tocsin-dev/examples/discord
  COMPONENT dev)
# tocsin-plugin.pc names the prefix it is installed under (/usr in the
# packages), so it is written at install time.
file(STRINGS plugins/tocsin_plugin.h tocsin_abi_line
  REGEX "^#define TOCSIN_PLUGIN_ABI_VERSION [0-9]+u?$")
string(REGEX MATCH "[0-9]+" TOCSIN_PLUGIN_ABI_VERSION "${tocsin_abi_line}")
install(CODE "
  set(prefix \"\${CMAKE_INSTALL_PREFIX}\")
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  set(TOCSIN_PLUGIN_ABI_VERSION \"${TOCSIN_PLUGIN_ABI_VERSION}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/packaging/tocsin-plugin.pc.in\"
    \"${tocsin_pkg_dir}/tocsin-plugin.pc\" @ONLY)
" COMPONENT dev)
install(FILES ${tocsin_pkg_dir}/tocsin-plugin.pc
  DESTINATION ${CMAKE_INSTALL_DATADIR}/pkgconfig COMPONENT dev)

# ---- CPack -----------------------------------------------------------------

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tocsin)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT ${TOCSIN_PACKAGE_MAINTAINER})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL tocsin dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${TOCSIN_PACKAGE_MAINTAINER})
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
# Modes and owners as installed (0644/0755, root), whatever the umask.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_TOCSIN_PACKAGE_NAME tocsin)
set(CPACK_DEBIAN_TOCSIN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_TOCSIN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_TOCSIN_PACKAGE_DEPENDS adduser)
# The system's CAs verify receivers' certificates.
set(CPACK_DEBIAN_TOCSIN_PACKAGE_RECOMMENDS ca-certificates)
set(CPACK_COMPONENT_TOCSIN_DESCRIPTION
  "webhook delivery daemon for AI-safety alerts
tocsin takes AI-safety events (a policy engine denying an agent's action, a
content scanner detecting a prompt injection, a behavioural monitor flagging
an anomaly) over an HTTP API and delivers them reliably to HTTPS webhooks,
signed per Standard Webhooks, to Slack and to PagerDuty: retries with
backoff, dead letters and replay, escalation rules, acknowledgements from
Slack and PagerDuty, Prometheus metrics and a live dashboard. Every state
change is written to an event log (RocksDB, or PostgreSQL for a cluster)
before it takes effect.

This package runs it as a hardened systemd service.")
set(CPACK_DEBIAN_TOCSIN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/deb/tocsin/conffiles
  ${PROJECT_SOURCE_DIR}/packaging/deb/tocsin/postinst
  ${PROJECT_SOURCE_DIR}/packaging/deb/tocsin/prerm
  ${PROJECT_SOURCE_DIR}/packaging/deb/tocsin/postrm)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME tocsin-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_DEV_PACKAGE_RECOMMENDS "tocsin, pkg-config")
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "headers for writing tocsin transport plugins
tocsin delivers AI-safety events to webhooks, Slack and PagerDuty. A
transport plugin, loaded by the daemon at start, turns an event into the
request for one kind of destination. This package holds the plugin ABI's C
headers, a pkg-config file (tocsin-plugin) and a complete example plugin for
Discord with its Makefile.")

include(CPack)
