/* SPDX-License-Identifier: MIT */
/* check.h: the install checks' one assertion: prints the failed condition
 * and makes main return 1. */
#ifndef INSTALL_CHECK_H
#define INSTALL_CHECK_H

#include <stdio.h>

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "install check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            return 1;                                                                         \
        }                                                                                     \
    } while (0)

#endif /* INSTALL_CHECK_H */
