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
add_test(NAME release_version COMMAND test_version)
add_test(NAME release_tool_version COMMAND tierpool-cli --version)
set_tests_properties(release_tool_version PROPERTIES
  PASS_REGULAR_EXPRESSION "^tierpool ${PROJECT_VERSION}\n$")
set_tests_properties(release_version release_tool_version PROPERTIES LABELS release TIMEOUT 60)

# The man pages (man/), generated from the tool, the header and the option
# table, say what `tierpool options`, `tierpool help` and tierpool.h say.
if(TARGET man)
  add_test(NAME release_man COMMAND ${TP_MAN_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/release/man_check.py
    $<TARGET_FILE:tierpool-cli> ${TP_MAN_DIR} ${PROJECT_SOURCE_DIR}/include/tierpool.h)
  set_tests_properties(release_man PROPERTIES LABELS release TIMEOUT 60)
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
add_test(NAME release_cpp_${TPR_THIS_CXX} COMMAND test_cpp)
set_tests_properties(release_cpp_${TPR_THIS_CXX} PROPERTIES LABELS "release;api" TIMEOUT 60)
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
    add_test(NAME ${TPR_OTHER_TEST} COMMAND ${TPR_OTHER_EXE})
  else()
    add_test(NAME ${TPR_OTHER_TEST} COMMAND sh -c "echo 'skipped: needs ${TPR_OTHER_CXX}'; exit 77")
  endif()
  set_tests_properties(${TPR_OTHER_TEST} PROPERTIES LABELS "release;api" TIMEOUT 60 SKIP_RETURN_CODE 77)
endif()

# The C++ example (examples/cpp), built in the tree as a consumer builds it.
add_executable(example_cpp ${PROJECT_SOURCE_DIR}/examples/cpp/pool_example.cc)
target_link_libraries(example_cpp PRIVATE tierpool)
set_target_properties(example_cpp PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
add_test(NAME release_example_cpp COMMAND example_cpp)
set_tests_properties(release_example_cpp PROPERTIES LABELS release TIMEOUT 60)

# The Rust crate (bindings/rust): cargo test against this build's library,
# offline, its version checked against CMake's. Not in sanitizer builds,
# whose library a plain Rust program cannot load.
if(NOT TP_SANITIZE)
  add_test(NAME rust_crate COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/release/rust.sh ${PROJECT_SOURCE_DIR}
    $<TARGET_FILE_DIR:tierpool> ${CMAKE_CURRENT_BINARY_DIR}/rust ${PROJECT_VERSION})
  set_tests_properties(rust_crate PROPERTIES LABELS "release;rust" TIMEOUT 300 SKIP_RETURN_CODE 77)
endif()

# Tests that need a tool this machine lacks are left out where they are
# defined (threads.cmake, track.cmake); one skipped test per missing tool
# names them in ctest's summary.
if(NOT TP_SANITIZE AND NOT TP_VALGRIND_EXE)
  add_test(NAME needs_valgrind COMMAND sh -c
    "echo 'skipped: needs valgrind (fastpath_count, track_memcheck_*)'; exit 77")
  set_tests_properties(needs_valgrind PROPERTIES LABELS release TIMEOUT 10 SKIP_RETURN_CODE 77)
elseif(NOT TP_SANITIZE AND NOT TP_VALGRIND_ENABLED)
  add_test(NAME needs_valgrind_headers COMMAND sh -c
    "echo 'skipped: needs <valgrind/memcheck.h> at build time (track_memcheck_*)'; exit 77")
  set_tests_properties(needs_valgrind_headers PROPERTIES LABELS release TIMEOUT 10 SKIP_RETURN_CODE 77)
endif()

# tp_stats_write(NULL, ...) and its documented cap of 64 pools.
add_executable(test_stats_write release/test_stats_write.c)
target_link_libraries(test_stats_write PRIVATE tierpool)
target_compile_options(test_stats_write PRIVATE ${TP_WARNINGS})
add_test(NAME release_stats_write COMMAND test_stats_write)
set_tests_properties(release_stats_write PROPERTIES LABELS "release;api" TIMEOUT 60)

# Every source file carries the license's SPDX line (CONTRIBUTING.md);
# `sh tests/release/spdx.sh . --add` writes it into new ones.
add_test(NAME release_spdx COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/release/spdx.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(release_spdx PROPERTIES LABELS release TIMEOUT 60 SKIP_RETURN_CODE 77)

# The engine's layers (docs/design.md): from the object files, no call runs
# up a layer and no files call each other in a cycle (release/layers.py).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME release_layers COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/release/layers.py
    --nm ${CMAKE_NM} $<TARGET_FILE:tierpool_static> $<TARGET_OBJECTS:tierpool_malloc_objects>)
  set_tests_properties(release_layers PROPERTIES LABELS release TIMEOUT 60)
endif()
