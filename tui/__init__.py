"""devtui's front ends: the Textual dashboard and the command line. SSH work goes through sshcore."""
