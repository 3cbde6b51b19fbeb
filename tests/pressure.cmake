# SPDX-License-Identifier: MIT
# Memory limits, pressure and the out-of-memory handler (issue 21), included
# by tests/CMakeLists.txt. Limits and PSI come from a fake root
# (TIERPOOL_SYSFS_ROOT, set by the test); a purge delay of 10 s keeps purging
# by time out of every case, so what is purged is pressure's doing.
tp_add_test(test_pressure LIB tierpool_static LABELS unit pressure TIMEOUT 120
  ENV TIERPOOL_PURGE_DELAY=10s)
# The free-then-grow workload, each in a process of its own (test_pressure.c).
foreach(case workload_time workload_high workload_hard workload_cgroup)
  tp_add_test(test_pressure_${case} EXE test_pressure LIB tierpool_static LABELS pressure rss TIMEOUT 120
    ARGS ${case} ENV TIERPOOL_PURGE_DELAY=10s)
endforeach()
# A child in a real cgroup; skipped (77) where none can be made.
tp_add_test(test_pressure_real_cgroup EXE test_pressure LIB tierpool_static LABELS pressure TIMEOUT 120
  ARGS real_cgroup ENV TIERPOOL_PURGE_DELAY=10s)
set_tests_properties(test_pressure_real_cgroup PROPERTIES SKIP_RETURN_CODE 77)
