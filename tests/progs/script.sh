#!/bin/sh
# script.sh FILE: a #! script that reads FILE.
exec cat "$1" > /dev/null
