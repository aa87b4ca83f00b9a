/* placeholder */ typedef int or_placeholder_worker;
