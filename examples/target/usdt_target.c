// A program with a USDT probe (provider `ebpfctl`, probe `tick`, arguments i and 42), for
// examples/usdt_tick.bpf.c. Usage: usdt_target N [DELAY_MS]: waits DELAY_MS, then fires the
// probe N times (i = 0 .. N-1) and exits.
#include <stdlib.h>
#include <time.h>
#include <sys/sdt.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1;
	long delay = argc > 2 ? atol(argv[2]) : 0;
	struct timespec ts = { delay / 1000, (delay % 1000) * 1000000 };
	nanosleep(&ts, NULL);
	for (long i = 0; i < n; i++) {
		long x = 42;
		DTRACE_PROBE2(ebpfctl, tick, i, x);
	}
	return 0;
}
