/* placeholder */ typedef int or_placeholder_config_rbac;
