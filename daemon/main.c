/* main.c — placeholder until the daemon is assembled. */
#include <stdio.h>

int main(void) {
	return 0;
}
