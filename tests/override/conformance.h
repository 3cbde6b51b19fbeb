/* SPDX-License-Identifier: MIT */
/*
 * conformance.h: what conformance.c and conformance_cxx.cc share.
 */
#ifndef TPO_CONFORMANCE_H
#define TPO_CONFORMANCE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Whether p points into a block of tierpool's (tp_pool_of(p) != NULL). */
int conf_ours(const void *p);
/* The C++ operators' checks; adds their counts to the caller's. */
void conformance_cxx(unsigned long *passed, unsigned long *failed);

#ifdef __cplusplus
}
#endif

#endif /* TPO_CONFORMANCE_H */
