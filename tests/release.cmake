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
