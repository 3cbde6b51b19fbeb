/* SPDX-License-Identifier: MIT */
/*
 * test_version.c: the version is set once, by CMake's project(VERSION)
 * (TP_CMAKE_VERSION here): the header's macros and the shared library's
 * tp_version() both report it.
 */
#include "tierpool.h"
#include "../test.h"

#include <stdio.h>

static void test_macros(void)
{
    char composed[32];
    snprintf(composed, sizeof composed, "%d.%d.%d", TP_VERSION_MAJOR, TP_VERSION_MINOR, TP_VERSION_PATCH);
    CHECK(strcmp(composed, TP_CMAKE_VERSION) == 0);
    CHECK(strcmp(TP_VERSION_STRING, TP_CMAKE_VERSION) == 0);
}

static void test_library(void)
{
    const char *v = tp_version();
    CHECK(v != NULL && strcmp(v, TP_CMAKE_VERSION) == 0);
    if (v) printf("tp_version() = %s, CMake: %s\n", v, TP_CMAKE_VERSION);
}

TEST_MAIN(CASE(macros), CASE(library))
