/* SPDX-License-Identifier: MIT */
/*
 * probe.c: run by `tierpool run` in tests/override/cli.sh. Prints what the
 * script checks, one `name=value` a line:
 *   tierpool=yes|no        whether malloc's block is tierpool's
 *   LD_PRELOAD=...         as the program received it
 *   TIERPOOL_SHOW_STATS=...
 * and exits 0 only when tierpool is the malloc.
 */
#include <stdio.h>
#include <stdlib.h>

#include "preload.h"

int main(void)
{
    preload_pool_of_fn pool_of = preload_pool_of();
    void *p = malloc(100);
    int ours = pool_of && p && pool_of(p);
    free(p);
    const char *preload = getenv("LD_PRELOAD"), *stats = getenv("TIERPOOL_SHOW_STATS");
    printf("tierpool=%s\nLD_PRELOAD=%s\nTIERPOOL_SHOW_STATS=%s\n", ours ? "yes" : "no", preload ? preload : "",
           stats ? stats : "");
    return ours ? 0 : 1;
}
