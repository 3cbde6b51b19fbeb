# SPDX-License-Identifier: MIT
# Engine-internal tests kept beside the module they test (see src/).
foreach(name test_adapt test_purge test_monitor test_stats test_stats_exact test_options test_phase_rss)
  add_executable(${name} ${name}.c)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
  target_link_libraries(${name} PRIVATE tierpool_static Threads::Threads)
  add_test(NAME ${name} COMMAND ${name})
endforeach()
set_tests_properties(test_options PROPERTIES ENVIRONMENT
  "TIERPOOL_PURGE_DELAY=250ms;TIERPOOL_HUGE_CACHE=12M;TIERPOOL_CACHE_KEEP_MAX=bogus")
set_tests_properties(test_stats_exact PROPERTIES ENVIRONMENT "TIERPOOL_STATS_EXACT=1")
# No purge pass (which halves the kept pages) may interrupt the adapt test.
set_tests_properties(test_adapt PROPERTIES ENVIRONMENT "TIERPOOL_PURGE_DELAY=3600s")
# The first allocation of a process must size its block after the mode is
# set up (its block was short of the exact size word once).
add_test(NAME test_stats_exact_first_alloc COMMAND test_stats_exact first_alloc)
set_tests_properties(test_stats_exact_first_alloc PROPERTIES LABELS unit TIMEOUT 60
  ENVIRONMENT "TIERPOOL_STATS_EXACT=1")
