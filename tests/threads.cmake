# SPDX-License-Identifier: MIT
# Multi-threaded tests and the fast-path instruction count, included by
# tests/CMakeLists.txt. Every test is labelled "threads"; each binary takes an
# optional subtest name to run alone.
find_package(Threads REQUIRED)

# Under TSan, known engine races (tests/threads-tsan.supp) are suppressed so
# the other checks keep running; their reproducers are disabled below.
set(TP_THREADS_TSAN_ENV
  "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=${CMAKE_CURRENT_SOURCE_DIR}/threads-tsan.supp")

# tp_thread_test(NAME [EXE binary] [CASE subtest] [TIMEOUT seconds]): the
# binary is built from tests/<binary>.c (default NAME); CASE runs one subtest.
function(tp_thread_test name)
  cmake_parse_arguments(T "" "EXE;CASE;TIMEOUT" "" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 180)
  endif()
  if(NOT T_EXE)
    set(T_EXE ${name})
  endif()
  set(env "")
  if(TP_SANITIZE STREQUAL "thread")
    set(env "${TP_THREADS_TSAN_ENV}")
  endif()
  tp_add_test(${name} EXE ${T_EXE} LIB tierpool_static LABELS threads TIMEOUT ${T_TIMEOUT} ARGS ${T_CASE}
    ENV ${env})
endfunction()

# test_threads: one ctest per subtest, so each stays short and ctest -j
# spreads them.
foreach(case random_ops rings shared_bag trim_and_stats huge_churn many_pools pool_cycles)
  tp_thread_test(test_threads_${case} EXE test_threads CASE ${case})
endforeach()
tp_thread_test(test_thread_churn)
tp_thread_test(test_fork)
tp_thread_test(test_steady_state)
tp_thread_test(test_remote_free_race)
tp_thread_test(test_huge_remap_race)
tp_thread_test(test_limit_abandoned_trim EXE test_limit_abandoned CASE after_exit_trim)
tp_thread_test(test_limit_abandoned EXE test_limit_abandoned CASE after_exit)
if(TP_SANITIZE STREQUAL "thread")
  # random_ops without the suppressions of tests/threads-tsan.supp.
  # Without suppressions: the purge delay read by thread caches.
  tp_test(test_threads_decay_race LABELS threads TIMEOUT 180 COMMAND test_threads random_ops
    ENV "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1")
  # init_race alone: its trimming thread starts before anything set the
  # process up. Without suppressions: the process set up while another
  # thread trims and reads statistics.
  # tpi_tcache_malloc_slow once read tpi_block_extra() (tpi_secure,
  # tpi_stats_exact) before a thread's first allocation set the process up;
  # TSan saw the read race with another thread's tpi_secure_init.
  tp_test(test_threads_init_race LABELS threads TIMEOUT 180 COMMAND test_threads init_race
    ENV "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1")
endif()

# The fast-path instruction count: tests/fastpath_count.py runs
# fastpath_count under callgrind and fails above 40 instructions per
# tp_malloc(64) + tp_free pair (the two calls; the harness loop's own
# instructions are reported beside them), and, beside that pair, above
#   fastpath_count_pool     5 more for tp_pool_malloc(pool, 64) + tp_free
#                           on an explicit pool
#   fastpath_count_preload  2 more for malloc(64) + free through
#                           LD_PRELOAD=libtierpool-malloc.so, in
#                           fastpath_count_malloc (links nothing of tierpool's;
#                           -fno-plt: it calls malloc through its GOT as
#                           fastpath_count calls tp_malloc directly, so the
#                           two loops are the same instructions)
# Only where valgrind is installed, and only in optimised builds without
# sanitizers or TP_DEBUG.
find_program(TP_VALGRIND_EXE valgrind)
find_package(Python3 COMPONENTS Interpreter)
if(TP_VALGRIND_EXE AND Python3_Interpreter_FOUND AND NOT TP_SANITIZE AND NOT TP_DEBUG
   AND NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
  add_executable(fastpath_count ${CMAKE_CURRENT_SOURCE_DIR}/fastpath_count.c)
  target_link_libraries(fastpath_count PRIVATE tierpool_static)
  target_compile_options(fastpath_count PRIVATE -O2 -Wall -Wextra -Werror)
  add_executable(fastpath_count_malloc ${CMAKE_CURRENT_SOURCE_DIR}/fastpath_count.c)
  target_include_directories(fastpath_count_malloc PRIVATE ${PROJECT_SOURCE_DIR}/include)
  target_compile_definitions(fastpath_count_malloc PRIVATE FASTPATH_MALLOC)
  target_compile_options(fastpath_count_malloc PRIVATE -O2 -Wall -Wextra -Werror -fno-builtin -fno-plt)
  # fastpath_count_alone: the same pair with no other block alive, so every
  # free empties the page (a program cycling around one block).
  set(fastpath_flags_alone --alone)
  set(fastpath_flags_pool --pool --max-over 5)
  set(fastpath_flags_preload --preload $<TARGET_FILE:tierpool-malloc> $<TARGET_FILE:fastpath_count_malloc>
    --max-over 2)
  foreach(mode IN ITEMS "" "alone" "pool" "preload")
    set(name fastpath_count)
    set(flags "")
    if(mode)
      set(name fastpath_count_${mode})
      set(flags ${fastpath_flags_${mode}})
    endif()
    # No time-driven purge pass may change the count between the two runs.
    tp_test(${name} LABELS threads perf TIMEOUT 180 ENV TIERPOOL_PURGE_DELAY=3600s
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/fastpath_count.py
              --valgrind ${TP_VALGRIND_EXE} --max-per-pair 40 ${flags} $<TARGET_FILE:fastpath_count>)
  endforeach()
endif()
