"""Static files of the web pages (a package so they ship in wheels)."""
