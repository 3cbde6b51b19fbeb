# SPDX-License-Identifier: MIT
# uninstall.cmake: removes what the last `cmake --install` of this build
# folder installed, as listed in its install_manifest.txt (make uninstall).
# The folders tierpool made for itself go too once empty (lib/cmake/tierpool);
# shared ones (lib/, include/, share/man/man3) stay.
set(manifest "${CMAKE_CURRENT_BINARY_DIR}/install_manifest.txt")
if(NOT EXISTS "${manifest}")
  message(FATAL_ERROR "uninstall: ${manifest} not found: nothing was installed from this build folder")
endif()
file(STRINGS "${manifest}" files)
set(removed 0)
foreach(file IN LISTS files)
  set(path "$ENV{DESTDIR}${file}")
  if(EXISTS "${path}" OR IS_SYMLINK "${path}")
    message(STATUS "Removing ${path}")
    file(REMOVE "${path}")
    math(EXPR removed "${removed} + 1")
    get_filename_component(dir "${path}" DIRECTORY)
    get_filename_component(name "${dir}" NAME)
    if(name STREQUAL "tierpool")
      file(GLOB left "${dir}/*")
      if(NOT left)
        file(REMOVE_RECURSE "${dir}")
      endif()
    endif()
  endif()
endforeach()
file(REMOVE "${manifest}")
message(STATUS "uninstall: ${removed} files removed")
