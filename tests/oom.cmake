# SPDX-License-Identifier: MIT
# Out of memory (issue 9), included by tests/CMakeLists.txt after
# override.cmake. test_oom runs each case in a child under RLIMIT_AS.
tp_add_test(test_oom LIB tierpool LABELS api oom TIMEOUT 60)

# The C++ operators and the C surface of libtierpool-malloc out of memory,
# under LD_PRELOAD (not in sanitizer builds, whose runtime owns malloc).
if(NOT TP_SANITIZE)
  tpo_program(test_oom_cxx ${CMAKE_CURRENT_SOURCE_DIR}/test_oom_cxx.cc)
  target_include_directories(override_test_oom_cxx PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  tpo_test(test_oom_cxx ${CMAKE_COMMAND} -E env LD_PRELOAD=${TPO_LIBRARY} $<TARGET_FILE:override_test_oom_cxx>)
  set_tests_properties(override_test_oom_cxx PROPERTIES LABELS "override;oom")
endif()
