/* getppid() load: `loadgen RATE SECONDS [wait]`. RATE 0 = as fast as possible.
 * With `wait`, starts only on SIGUSR1 (so a tracer can be attached to its pid first).
 * Prints "issued N" when done. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double rate = argc > 1 ? atof(argv[1]) : 0, secs = argc > 2 ? atof(argv[2]) : 1;
	if (argc > 3) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, NULL);
		int sig;
		sigwait(&set, &sig);
	}
	double t0 = now(), end = t0 + secs;
	unsigned long n = 0;
	while (1) {
		double t = now();
		if (t >= end)
			break;
		if (rate > 0) {
			double due = t0 + n / rate;
			if (t < due)
				continue;
		}
		for (int i = 0; i < 64 && (rate == 0 || i < 1); i++, n++)
			syscall(SYS_getppid);
	}
	printf("issued %lu\n", n);
	return 0;
}
