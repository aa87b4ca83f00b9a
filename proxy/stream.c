/* placeholder */ typedef int or_placeholder_stream;
