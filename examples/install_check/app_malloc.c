/* SPDX-License-Identifier: MIT */
/*
 * app_malloc.c: a program linked with the drop-in instead of preloading it,
 * built by .ci/run two ways against an install:
 *   cc app_malloc.c $(pkg-config --cflags --libs tierpool-malloc)
 *   CMake: find_package(tierpool) + target_link_libraries(app_malloc tierpool::malloc)
 * Its plain malloc, calloc, realloc and free are tierpool's: tp_pool_of
 * (exported by libtierpool-malloc too) finds their blocks in the default pool.
 */
#include <tierpool.h>

#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    char *s = malloc(100);
    CHECK(s != NULL);
    strcpy(s, "drop-in");
    CHECK(tp_pool_of(s) == tp_pool_default());
    s = realloc(s, 10000);
    CHECK(s != NULL && tp_pool_of(s) == tp_pool_default() && strcmp(s, "drop-in") == 0);
    int *zeros = calloc(1000, sizeof *zeros);
    CHECK(zeros != NULL && tp_pool_of(zeros) != NULL && zeros[999] == 0);
    free(zeros);
    free(s);
    printf("install check (malloc): ok (tierpool %s)\n", tp_version());
    return 0;
}
