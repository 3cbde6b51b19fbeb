# SPDX-License-Identifier: MIT
# Releases, included by CMakeLists.txt after every install():
#
#   make uninstall   removes what `make install` installed (cmake/uninstall.cmake)
#   make deb         Debian packages by CPack, one per install component:
#                      libtierpool0      runtime: libtierpool.so.0, libtierpool-malloc.so.0
#                      libtierpool-dev   dev: headers, libtierpool.a, tierpool-malloc.o,
#                                        the .so links, pkg-config, CMake, tierpool(3)
#                      tierpool          tool: the tierpool tool, tierpool(1), tierpool(7)
#
# The package names carry the SOVERSION (docs/versioning.md); -dev and the
# tool need the runtime package of exactly their version. Each package gets
# the license as /usr/share/doc/<package>/copyright (TP_DEB=ON); a prefix
# install has it as share/doc/tierpool/LICENSE.

add_custom_target(uninstall
  COMMAND ${CMAKE_COMMAND} -P ${CMAKE_CURRENT_LIST_DIR}/uninstall.cmake
  WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
  COMMENT "Removing the files of the last install from this build folder")

set(TP_DEB_RUNTIME libtierpool${PROJECT_VERSION_MAJOR})
set(TP_DEB_DEV libtierpool-dev)
set(TP_DEB_TOOL tierpool)
if(TP_DEB)
  foreach(c runtime dev tool)
    string(TOUPPER ${c} C)
    install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${TP_DEB_${C}}
      RENAME copyright COMPONENT ${c})
  endforeach()
else()
  install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT runtime)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tierpool)
set(CPACK_PACKAGE_VENDOR "The tierpool authors")
set(CPACK_PACKAGE_CONTACT "The tierpool authors")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_COMPONENTS_ALL runtime dev tool)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${TP_DEB_RUNTIME})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
# shlibs and the ldconfig trigger: programs built against 0.y need >= 0.y.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION
  "tierpool memory allocator: shared libraries\nlibtierpool.so: explicit pools (create, reset, destroy at once, a memory\nlimit) and a default pool with thread caches, statistics and monitoring.\nlibtierpool-malloc.so: the same engine as the process's malloc, free and\nC++ new/delete, for LD_PRELOAD or linking.")

set(TP_DEB_EXACT "${TP_DEB_RUNTIME} (= ${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE})")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME ${TP_DEB_DEV})
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS ${TP_DEB_EXACT})
set(CPACK_DEBIAN_DEV_DESCRIPTION
  "tierpool memory allocator: development files\ntierpool.h, tierpool.hpp (C++: std::pmr and STL allocators),\ntierpool_segment.h (reading published statistics), the static\nlibrary, tierpool-malloc.o for static programs, pkg-config files\n(tierpool, tierpool-malloc), the CMake package (tierpool::tierpool,\ntierpool::malloc) and tierpool(3).")

set(CPACK_DEBIAN_TOOL_PACKAGE_NAME ${TP_DEB_TOOL})
set(CPACK_DEBIAN_TOOL_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_TOOL_PACKAGE_DEPENDS ${TP_DEB_EXACT})
set(CPACK_DEBIAN_TOOL_DESCRIPTION
  "tierpool memory allocator: the tierpool tool\nRuns programs with tierpool as their malloc and shows a running process's\nheap: live statistics like top, CSV records, SVG plots, a Prometheus\nexporter. tierpool(1) and tierpool(7) describe it and the options.")

include(CPack)
