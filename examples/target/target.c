/* A program of ours for the examples to observe: `ebpfctl-example-target MODE ...`.
 *   sample            call ebpfctl_example_probe() with a struct of known values (uprobe example)
 *   getppid N         N getppid syscalls
 *   sleep N USEC      N sleeps of USEC microseconds
 *   signal N          raise SIGUSR1 N times (handled)
 *   udp PORT N        send N UDP datagrams to 127.0.0.1:PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/types.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#define SEC(x)
#define EBPFCTL_NO_BARE_NAMES
#include "ebpfctl.h"
#include "../types.h"

__attribute__((noinline)) int ebpfctl_example_probe(const struct example_sample *s)
{
	__asm__ volatile("" : : "r"(s) : "memory");
	return s->u8;
}

static struct example_sample make_sample(void)
{
	struct example_sample s;
	memset(&s, 0, sizeof(s));
	s.u8 = 250;
	s.s8 = -7;
	s.u16 = 65000;
	s.s16 = -300;
	s.u32 = 4000000000u;
	s.s32 = -2000000000;
	s.u64 = 18446744073709551615ull;
	s.s64 = -9000000000000000000ll;
	s.flag = 1;
	s.color = BLUE;
	s.bf_a = 5;
	s.bf_b = 17;
	s.bf_c = -3;
	strcpy(s.name, "ebpfctl");
	s.arr[0] = 1; s.arr[1] = 2; s.arr[2] = 3;
	s.f32 = 1.5f;
	s.f64 = -2.25;
	s.ptr = (void *)0xdeadbeefUL;
	s.inner.port = 8080;
	s.inner.delta = -1;
	s.un.as_u32 = 0x04030201;
	inet_pton(AF_INET, "10.1.2.3", &s.v4);
	inet_pton(AF_INET6, "2001:db8::1", s.v6);
	inet_pton(AF_INET, "127.0.0.1", s.ep.addr);
	s.ep.port = 9091;
	s.ep.family = AF_INET;
	s.ep.proto = 6;
	s.err = -13;
	s.sig = 9;
	s.sc = 257;
	s.took = 1500000;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	s.at = (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	s.pid = getpid();
	strcpy(s.who, "target");
	return s;
}

static void on_usr1(int sig) { (void)sig; }

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s sample|getppid N [LINGER_MS]|sleep N USEC|signal N|udp PORT N\n", argv[0]);
		return 2;
	}
	const char *mode = argv[1];
	long n = argc > 2 ? atol(argv[2]) : 1;
	if (!strcmp(mode, "sample")) {
		struct example_sample s = make_sample();
		return ebpfctl_example_probe(&s) == 250 ? 0 : 1;
	} else if (!strcmp(mode, "getppid")) {
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
		/* Stay a while, e.g. so user stacks can be symbolised against the live process. */
		long linger = argc > 3 ? atol(argv[3]) : 0;
		struct timespec ts = { linger / 1000, (linger % 1000) * 1000000 };
		if (linger > 0)
			nanosleep(&ts, NULL);
	} else if (!strcmp(mode, "sleep")) {
		long us = argc > 3 ? atol(argv[3]) : 1000;
		struct timespec req = { us / 1000000, (us % 1000000) * 1000 };
		for (long i = 0; i < n; i++)
			clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL);
	} else if (!strcmp(mode, "signal")) {
		signal(SIGUSR1, on_usr1);
		for (long i = 0; i < n; i++)
			raise(SIGUSR1);
	} else if (!strcmp(mode, "udp")) {
		int port = (int)n;
		long count = argc > 3 ? atol(argv[3]) : 1;
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
		inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
		for (long i = 0; i < count; i++)
			sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to));
		close(fd);
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	return 0;
}
