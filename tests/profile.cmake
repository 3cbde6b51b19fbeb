# SPDX-License-Identifier: MIT
# Heap profiles (docs/profiling.md), label "profile", included by
# tests/CMakeLists.txt: profile/profile_prog.c allocates known amounts from
# three call sites, and profile/profile_test.py profiles it (from outside
# with `tierpool profile`, or at exit) and reads the result with the real
# google-pprof. Skipped (77) without google-pprof, but not in CI
# (tools/install-deps.sh installs it).
add_executable(profile_prog ${CMAKE_CURRENT_SOURCE_DIR}/profile/profile_prog.c)
target_compile_options(profile_prog PRIVATE ${TP_WARNINGS})
# Its backtrace must be seen by the library (the "unwinder" case).
set_target_properties(profile_prog PROPERTIES ENABLE_EXPORTS ON)
if(TP_SANITIZE)
  # The sanitizer's runtime owns malloc: the sites call tp_malloc.
  target_compile_definitions(profile_prog PRIVATE PROFILE_TP_API=1)
  target_link_libraries(profile_prog PRIVATE tierpool Threads::Threads ${CMAKE_DL_LIBS})
else()
  target_link_libraries(profile_prog PRIVATE tierpool-malloc Threads::Threads ${CMAKE_DL_LIBS})
  target_include_directories(profile_prog PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/include)
endif()

# The live set exactly: every allocation a sample (PROFILE_SAMPLE=1).
tp_add_test(test_profile LIB tierpool LABELS profile api)

foreach(case outside pool fork threads unwinder at_exit)
  tp_test(profile_${case} LABELS profile TIMEOUT 240 SKIP_RETURN_CODE 77
    COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/profile/profile_test.py ${case} --prog $<TARGET_FILE:profile_prog> --tool $<TARGET_FILE:tierpool-cli>
    --work ${CMAKE_CURRENT_BINARY_DIR}/profile-${case})
endforeach()
