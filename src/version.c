/* SPDX-License-Identifier: MIT */
/* version.c: the library's own version, for programs that run against
 * another build than the header they were compiled with (docs/versioning.md). */
#include "tierpool.h"

const char *tp_version(void)
{
    return TP_VERSION_STRING;
}
