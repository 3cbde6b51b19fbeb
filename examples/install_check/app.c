/* SPDX-License-Identifier: MIT */
/*
 * app.c: a consumer of an installed tierpool, built two ways by .ci/run:
 *   cc app.c $(pkg-config --cflags --libs tierpool)
 *   CMake: find_package(tierpool) + target_link_libraries(app tierpool::tierpool)
 * It exercises the default pool, an explicit pool and a huge block, and
 * exits 0 with "install check: ok" when all behave.
 */
#include <tierpool.h>

#include "check.h"

#include <stdio.h>
#include <string.h>

int main(void)
{
    char *s = tp_malloc(64);
    CHECK(s != NULL);
    strcpy(s, "tierpool");
    CHECK(tp_usable_size(s) >= 64);
    CHECK(tp_pool_of(s) == tp_pool_default());

    tp_pool *pool = tp_pool_create("install-check", NULL);
    CHECK(pool != NULL);
    CHECK(strcmp(tp_pool_name(pool), "install-check") == 0);
    void *blocks[100];
    CHECK(tp_pool_malloc_bulk(pool, 256, 100, blocks) == 100);
    CHECK(tp_pool_of(blocks[42]) == pool);
    void *big = tp_pool_malloc(pool, 3u << 20); /* the huge tier */
    CHECK(big != NULL && tp_pool_of(big) == pool);
    tp_free(blocks[0]);
    tp_pool_destroy(pool); /* releases the other 99 and the huge block */

    s = tp_realloc(s, 4096);
    CHECK(s != NULL && strcmp(s, "tierpool") == 0);
    tp_free(s);
    /* The header installed with the library is of the library's version. */
    CHECK(strcmp(tp_version(), TP_VERSION_STRING) == 0);
    printf("install check: ok (tierpool %s)\n", tp_version());
    return 0;
}
