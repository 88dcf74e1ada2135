// The probed program of bench/observe/costs: calls hit(buf) N times.
#include <stdlib.h>

char buf[4096] = "GET /index.html HTTP/1.1";

__attribute__((noinline)) void hit(char *p)
{
	asm volatile("" ::"r"(p) : "memory");
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	for (long i = 0; i < n; i++)
		hit(buf);
	return 0;
}
