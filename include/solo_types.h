/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * solo_types.h - the name bumblebee's probes include: the same typedefs (ipv4_addr,
 * ipv6_addr, duration, ...) and helpers as ebpfctl.h, so `ebpfctl build` compiles their
 * sources unchanged.
 */
#ifndef __EBPFCTL_SOLO_TYPES_H__
#define __EBPFCTL_SOLO_TYPES_H__
#include "ebpfctl.h"
#endif
