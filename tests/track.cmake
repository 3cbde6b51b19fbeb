# SPDX-License-Identifier: MIT
# Memory checkers (src/track.h, docs/security.md "Valgrind and
# AddressSanitizer"): track_bugs.c seeds one bug per case, and
# track_check.sh checks that the tool names it with the user's stack, or,
# for the clean case (threads, remote frees, realloc, huge blocks, pool reset
# and destroy), that it reports nothing. Memcheck in a build with TP_VALGRIND
# and no sanitizer (in secure mode too); ASan in a TP_SANITIZE=address build.

find_program(TP_VALGRIND_EXE valgrind)
add_executable(track_bugs track_bugs.c)
target_link_libraries(track_bugs PRIVATE tierpool Threads::Threads)
# Line numbers and frames in the reports; no inlining of the seeded bugs.
target_compile_options(track_bugs PRIVATE ${TP_WARNINGS} -g -O1)

function(tp_track_test name tool case)
  tp_test(track_${name} LABELS track ${tool} TIMEOUT 120
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/track_check.sh ${tool} $<TARGET_FILE:track_bugs> ${case} ${ARGN})
endfunction()

if(TP_SANITIZE STREQUAL "address")
  tp_track_test(asan_clean asan clean)
  tp_track_test(asan_use_after_free asan use-after-free "use-after-poison" seed_use_after_free)
  tp_track_test(asan_huge_after_free asan huge-after-free "use-after-poison" seed_huge_after_free)
  tp_track_test(asan_overflow asan overflow "use-after-poison" seed_overflow)
elseif(NOT TP_SANITIZE AND TP_VALGRIND_ENABLED AND TP_VALGRIND_EXE)
  tp_track_test(memcheck_clean valgrind clean)
  tp_track_test(memcheck_clean_secure valgrind clean)
  set_tests_properties(track_memcheck_clean_secure PROPERTIES ENVIRONMENT TIERPOOL_SECURE=1)
  tp_track_test(memcheck_use_after_free valgrind use-after-free
    "Invalid write of size 1" "inside a block of size 40 free'd" seed_use_after_free)
  tp_track_test(memcheck_huge_after_free valgrind huge-after-free
    "Invalid write of size 1" "free'd" seed_huge_after_free)
  tp_track_test(memcheck_uninit valgrind uninit
    "Conditional jump or move depends on uninitialised value" seed_uninit)
  tp_track_test(memcheck_overflow valgrind overflow "Invalid write of size 1" seed_overflow)
  tp_track_test(memcheck_leak valgrind leak "100 bytes in 1 blocks are definitely lost" seed_leak)
  tp_track_test(memcheck_pool_leak valgrind pool-leak "200 bytes in 1 blocks are definitely lost" seed_pool_leak)
endif()
