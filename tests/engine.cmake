# SPDX-License-Identifier: MIT
# Engine-internal tests kept beside the module they test (see src/).
foreach(name test_adapt test_purge test_monitor test_stats test_stats_exact test_options test_phase_rss)
  tp_add_test(${name} LIB tierpool_static LABELS unit)
endforeach()
set_tests_properties(test_options PROPERTIES ENVIRONMENT
  "TIERPOOL_PURGE_DELAY=250ms;TIERPOOL_HUGE_CACHE=12M;TIERPOOL_CACHE_KEEP_MAX=bogus")
set_tests_properties(test_stats_exact PROPERTIES ENVIRONMENT "TIERPOOL_STATS_EXACT=1")
# No purge pass (which halves the kept pages) may interrupt the adapt test.
set_tests_properties(test_adapt PROPERTIES ENVIRONMENT "TIERPOOL_PURGE_DELAY=3600s")
# test_phase_rss measures resident memory through a workload's phases.
set_tests_properties(test_phase_rss PROPERTIES LABELS "unit;rss")
# The first allocation of a process must size its block after the mode is
# set up (its block was short of the exact size word once).
tp_add_test(test_stats_exact_first_alloc EXE test_stats_exact LIB tierpool_static LABELS unit TIMEOUT 60
  ARGS first_alloc ENV TIERPOOL_STATS_EXACT=1)
