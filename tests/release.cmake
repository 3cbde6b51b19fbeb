# SPDX-License-Identifier: MIT
# Tests of what a release ships, included by tests/CMakeLists.txt, label
# "release" (`ctest -L release`): the version in its every place, the man
# pages, the C++ header and the Rust crate.

# The version: CMake's, the header's macros, the library's tp_version() and
# `tierpool --version` agree (docs/versioning.md).
add_executable(test_version release/test_version.c)
target_link_libraries(test_version PRIVATE tierpool)
target_compile_options(test_version PRIVATE ${TP_WARNINGS})
target_compile_definitions(test_version PRIVATE TP_CMAKE_VERSION="${PROJECT_VERSION}")
tp_test(release_version LABELS release TIMEOUT 60 COMMAND test_version)
tp_test(release_tool_version LABELS release TIMEOUT 60 PASS_REGULAR_EXPRESSION "^tierpool ${PROJECT_VERSION}\n$"
  COMMAND tierpool-cli --version)

# The man pages (man/), generated from the tool, the header and the option
# table, say what `tierpool options`, `tierpool help` and tierpool.h say.
if(TARGET man)
  tp_test(release_man LABELS release TIMEOUT 60 COMMAND ${TP_MAN_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/release/man_check.py
    $<TARGET_FILE:tierpool-cli> ${TP_MAN_DIR} ${PROJECT_SOURCE_DIR}/include/tierpool.h)
endif()

# include/tierpool.hpp, by the tree's C++ compiler and by the other of g++
# and clang++ (outside CMake's toolchain, so not in sanitizer builds): its
# test prints "skipped: needs ..." where that compiler is missing.
add_executable(test_cpp release/test_cpp.cc)
target_link_libraries(test_cpp PRIVATE tierpool)
target_compile_options(test_cpp PRIVATE -Wall -Wextra -Werror -Wshadow)
set_target_properties(test_cpp PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  set(TPR_THIS_CXX g++)
  set(TPR_OTHER_CXX clang++)
else()
  set(TPR_THIS_CXX clang++)
  set(TPR_OTHER_CXX g++)
endif()
tp_test(release_cpp_${TPR_THIS_CXX} LABELS release api TIMEOUT 60 COMMAND test_cpp)
if(NOT TP_SANITIZE)
  find_program(TPR_OTHER_CXX_PATH ${TPR_OTHER_CXX})
  set(TPR_OTHER_TEST release_cpp_${TPR_OTHER_CXX})
  if(TPR_OTHER_CXX_PATH)
    set(TPR_OTHER_EXE ${CMAKE_CURRENT_BINARY_DIR}/test_cpp_${TPR_OTHER_CXX})
    add_custom_command(OUTPUT ${TPR_OTHER_EXE}
      COMMAND ${TPR_OTHER_CXX_PATH} -std=c++17 -O2 -Wall -Wextra -Werror -Wshadow
        -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_BINARY_DIR}/include
        ${CMAKE_CURRENT_SOURCE_DIR}/release/test_cpp.cc -o ${TPR_OTHER_EXE}
        $<TARGET_FILE:tierpool> -Wl,-rpath,$<TARGET_FILE_DIR:tierpool> -pthread
      DEPENDS release/test_cpp.cc test.h ${PROJECT_SOURCE_DIR}/include/tierpool.hpp
        ${PROJECT_SOURCE_DIR}/include/tierpool.h tierpool
      VERBATIM)
    add_custom_target(test_cpp_other ALL DEPENDS ${TPR_OTHER_EXE})
    tp_test(${TPR_OTHER_TEST} LABELS release api TIMEOUT 60 COMMAND ${TPR_OTHER_EXE})
  else()
    tp_test(${TPR_OTHER_TEST} LABELS release api TIMEOUT 60 SKIP_RETURN_CODE 77
      COMMAND sh -c "echo 'skipped: needs ${TPR_OTHER_CXX}'; exit 77")
  endif()
endif()

# The C++ example (examples/cpp), built in the tree as a consumer builds it.
add_executable(example_cpp ${PROJECT_SOURCE_DIR}/examples/cpp/pool_example.cc)
target_link_libraries(example_cpp PRIVATE tierpool)
set_target_properties(example_cpp PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
tp_test(release_example_cpp LABELS release TIMEOUT 60 COMMAND example_cpp)

# The Rust crate (bindings/rust): cargo test against this build's library,
# offline, its version checked against CMake's. Not in sanitizer builds,
# whose library a plain Rust program cannot load.
if(NOT TP_SANITIZE)
  tp_test(rust_crate LABELS release rust TIMEOUT 300 SKIP_RETURN_CODE 77
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/release/rust.sh ${PROJECT_SOURCE_DIR}
    $<TARGET_FILE_DIR:tierpool> ${CMAKE_CURRENT_BINARY_DIR}/rust ${PROJECT_VERSION})
endif()

# Tests that need a tool this machine lacks are left out where they are
# defined (threads.cmake, track.cmake); one skipped test per missing tool
# names them in ctest's summary.
if(NOT TP_SANITIZE AND NOT TP_VALGRIND_EXE)
  tp_test(needs_valgrind LABELS release TIMEOUT 10 SKIP_RETURN_CODE 77 COMMAND sh -c
    "echo 'skipped: needs valgrind (fastpath_count, track_memcheck_*)'; exit 77")
elseif(NOT TP_SANITIZE AND NOT TP_VALGRIND_ENABLED)
  tp_test(needs_valgrind_headers LABELS release TIMEOUT 10 SKIP_RETURN_CODE 77 COMMAND sh -c
    "echo 'skipped: needs <valgrind/memcheck.h> at build time (track_memcheck_*)'; exit 77")
endif()

# tp_stats_write(NULL, ...) and its documented cap of 64 pools.
add_executable(test_stats_write release/test_stats_write.c)
target_link_libraries(test_stats_write PRIVATE tierpool)
target_compile_options(test_stats_write PRIVATE ${TP_WARNINGS})
tp_test(release_stats_write LABELS release api TIMEOUT 60 COMMAND test_stats_write)

# Every source file carries the license's SPDX line (CONTRIBUTING.md);
# `sh tests/release/spdx.sh . --add` writes it into new ones.
tp_test(release_spdx LABELS release TIMEOUT 60 SKIP_RETURN_CODE 77
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/release/spdx.sh ${PROJECT_SOURCE_DIR})

# The engine's layers (docs/design.md): from the object files, no call runs
# up a layer and no files call each other in a cycle (release/layers.py).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  tp_test(release_layers LABELS release TIMEOUT 60 COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/release/layers.py
    --nm ${CMAKE_NM} $<TARGET_FILE:tierpool_static> $<TARGET_OBJECTS:tierpool_malloc_objects>)
endif()

# The tool builds against an installed tierpool (its headers and static
# library, nothing of src/) and prints what the tree's tool prints. Not in
# sanitizer builds, whose library needs the sanitizer's runtime linked.
if(NOT TP_SANITIZE)
  tp_test(release_tool_installed LABELS release TIMEOUT 120
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/release/tool_installed.sh ${CMAKE_COMMAND} ${CMAKE_C_COMPILER}
    ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/tool-installed)
endif()
