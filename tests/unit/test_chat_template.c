#include "check.h"
int main(void) { CHECK(1); CHECK_DONE(); }
