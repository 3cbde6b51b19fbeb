# SPDX-License-Identifier: MIT
# The secure mode (docs/security.md): its own test, then black-box suites
# again with TIERPOOL_SECURE=1, so that secure mode raises no false alarm on
# correct programs (the white-box unit tests assume the default layout).
tp_add_test(test_secure LIB tierpool LABELS death secure ENV TIERPOOL_SECURE=1)
tp_add_test(test_differential_secure EXE test_differential LIB tierpool LABELS differential secure
  ARGS 3 -5 ENV TIERPOOL_SECURE=1)

# The malloc replacement in secure mode: the conformance program and the real
# programs, unchanged (override.cmake's helpers; not in sanitizer builds).
if(NOT TP_SANITIZE)
  tpo_test(conformance_preload_secure ${CMAKE_COMMAND} -E env LD_PRELOAD=${TPO_LIBRARY} TIERPOOL_SECURE=1
    $<TARGET_FILE:override_conformance>)
  set_tests_properties(override_conformance_preload_secure PROPERTIES LABELS "override;secure")
  foreach(program python3 sqlite3 lua5.4 sort gcc)
    tpo_test(real_${program}_secure ${CMAKE_COMMAND} -E env TIERPOOL_SECURE=1
      sh ${TPO_DIR}/real_programs.sh ${program} ${TPO_LIBRARY} ${PROJECT_SOURCE_DIR}
      ${CMAKE_CURRENT_BINARY_DIR}/override-${program}-secure)
    set_tests_properties(override_real_${program}_secure PROPERTIES LABELS "override;secure")
  endforeach()
endif()
