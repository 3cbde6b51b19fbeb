# SPDX-License-Identifier: MIT
# Tests of the drop-in malloc (libtierpool-malloc.so, tierpool-malloc.o) and
# of `tierpool run`, included by tests/CMakeLists.txt; sources in override/,
# all named override_* and labelled "override" (`ctest -R override`).
#
# Sanitizer builds cannot preload an allocator (the sanitizer's runtime owns
# malloc), so they keep only the export check.
set(TPO_DIR ${CMAKE_CURRENT_SOURCE_DIR}/override)
set(TPO_LIBRARY $<TARGET_FILE:tierpool-malloc>)

# tpo_test(NAME COMMAND...): exit status 77 means skipped.
function(tpo_test name)
  tp_test(override_${name} LABELS override TIMEOUT 120 SKIP_RETURN_CODE 77 COMMAND ${ARGN})
endfunction()

tpo_test(exports sh ${TPO_DIR}/exports.sh ${CMAKE_NM} ${TPO_LIBRARY})

if(TP_SANITIZE)
  return()
endif()

# tpo_program(NAME SOURCES...): a test program that links nothing of
# tierpool's; it finds the library at run time (override/preload.h).
function(tpo_program name)
  add_executable(override_${name} ${ARGN})
  target_include_directories(override_${name} PRIVATE ${PROJECT_SOURCE_DIR}/include)
  # -fno-builtin: the compiler must not fold or drop the calls under test.
  target_compile_options(override_${name} PRIVATE $<$<COMPILE_LANGUAGE:C>:${TP_WARNINGS}>
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Werror -Wshadow> -fno-builtin)
  target_link_libraries(override_${name} PRIVATE ${CMAKE_DL_LIBS} Threads::Threads)
  set_target_properties(override_${name} PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
endfunction()

set(TPO_CONFORMANCE_SOURCES ${TPO_DIR}/conformance.c ${TPO_DIR}/conformance_cxx.cc)
tpo_program(conformance ${TPO_CONFORMANCE_SOURCES})
tpo_program(threads ${TPO_DIR}/threads.c)
tpo_program(fork ${TPO_DIR}/fork.c)
tpo_program(probe ${TPO_DIR}/probe.c)

foreach(name conformance threads fork)
  tpo_test(${name}_preload ${CMAKE_COMMAND} -E env LD_PRELOAD=${TPO_LIBRARY} $<TARGET_FILE:override_${name}>)
endforeach()

# The system allocator beside tierpool (override/foreign.c): glibc's blocks
# freed into tierpool's free go back to glibc, or abort in checked mode;
# TIERPOOL_PASSTHROUGH=1 routes everything to glibc, real programs too.
tpo_program(foreign ${TPO_DIR}/foreign.c)
tpo_test(foreign_preload ${CMAKE_COMMAND} -E env LD_PRELOAD=${TPO_LIBRARY} $<TARGET_FILE:override_foreign> foreign)
tpo_test(foreign_checked_preload ${CMAKE_COMMAND} -E env LD_PRELOAD=${TPO_LIBRARY} TIERPOOL_CHECK=1
  $<TARGET_FILE:override_foreign> checked)
tpo_test(passthrough_preload ${CMAKE_COMMAND} -E env LD_PRELOAD=${TPO_LIBRARY} TIERPOOL_PASSTHROUGH=1
  $<TARGET_FILE:override_foreign> passthrough)

# The C++ operators without libstdc++ (docs/override.md): the library needs
# libc only; a C program preloading it loads no libstdc++, a failing throwing
# new aborts there with one line, and a C++ plugin dlopened later (which
# brings libstdc++ out of the library's sight) still gets std::bad_alloc,
# its new_handler, and nullptr from nothrow new whose handler throws.
if(CMAKE_READELF)
  set(TPO_READELF ${CMAKE_READELF})
else()
  set(TPO_READELF readelf)
endif()
tpo_test(needed sh ${TPO_DIR}/needed.sh ${TPO_READELF} ${TPO_LIBRARY})
add_library(override_cxx_plugin MODULE ${TPO_DIR}/cxx_plugin.cc)
target_compile_options(override_cxx_plugin PRIVATE -Wall -Wextra -Werror -Wshadow -fno-builtin)
target_link_libraries(override_cxx_plugin PRIVATE ${CMAKE_DL_LIBS})
set_target_properties(override_cxx_plugin PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
tpo_program(cxx_runtime ${TPO_DIR}/cxx_runtime.c)
target_compile_definitions(override_cxx_runtime PRIVATE TPO_CXX_PLUGIN="$<TARGET_FILE:override_cxx_plugin>")
add_dependencies(override_cxx_runtime override_cxx_plugin)
tpo_test(cxx_runtime_preload ${CMAKE_COMMAND} -E env LD_PRELOAD=${TPO_LIBRARY} $<TARGET_FILE:override_cxx_runtime>)

# The same conformance program linked with tierpool-malloc.o: fully static
# when the static C and C++ libraries are installed, else an ordinary link.
include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_LINK_OPTIONS -static)
check_cxx_source_compiles("#include <new>\nint main() { delete new int; }" TPO_HAVE_STATIC_LINK)
unset(CMAKE_REQUIRED_LINK_OPTIONS)
tpo_program(conformance_static ${TPO_CONFORMANCE_SOURCES})
target_compile_definitions(override_conformance_static PRIVATE TPO_STATIC)
target_link_libraries(override_conformance_static PRIVATE ${TP_MALLOC_OBJECT})
if(TPO_HAVE_STATIC_LINK)
  target_link_options(override_conformance_static PRIVATE -static)
endif()
add_dependencies(override_conformance_static tierpool-malloc-object)
set_target_properties(override_conformance_static PROPERTIES LINK_DEPENDS ${TP_MALLOC_OBJECT})
tpo_test(conformance_static override_conformance_static)

foreach(program python3 sqlite3 lua5.4 sort gcc)
  tpo_test(real_${program} sh ${TPO_DIR}/real_programs.sh ${program} ${TPO_LIBRARY} ${PROJECT_SOURCE_DIR}
    ${CMAKE_CURRENT_BINARY_DIR}/override-${program})
endforeach()
foreach(program python3 sqlite3)
  tpo_test(real_${program}_passthrough ${CMAKE_COMMAND} -E env TIERPOOL_PASSTHROUGH=1 sh ${TPO_DIR}/real_programs.sh
    ${program} ${TPO_LIBRARY} ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/override-${program}-passthrough)
endforeach()

tpo_test(cli sh ${TPO_DIR}/cli.sh ${CMAKE_COMMAND} ${PROJECT_BINARY_DIR} $<TARGET_FILE:override_probe>
  ${CMAKE_CURRENT_BINARY_DIR}/override-prefix)
