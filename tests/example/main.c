#include <stdio.h>

#include "greet.h"
#include "version.h"

int main(void)
{
	greet("bsandbox");
	printf("version %s\n", VERSION);
	return 0;
}
