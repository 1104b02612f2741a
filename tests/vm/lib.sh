# placeholder
rig_cleanup() { :; }
